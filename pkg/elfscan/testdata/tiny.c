int tiny_value = 42;
int tiny(void) { return tiny_value; }

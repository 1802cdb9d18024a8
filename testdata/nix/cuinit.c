/*
 * cuinit: package.nix's passthru.tests.fake-root program. It loads
 * libcuda.so.1 by soname, as a Nix-built CUDA program does, prints the
 * path the loader opened it by and cuInit's result (the fake driver of
 * testdata/fakes gives 100 when it found libnvidia-ptxjitcompiler.so.1,
 * 221 when not), and exits 0 only for 100.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <link.h>
#include <stdio.h>

int main(void)
{
	void *h = dlopen("libcuda.so.1", RTLD_NOW);
	if (h == NULL) {
		printf("dlopen %s\n", dlerror());
		return 1;
	}
	struct link_map *lm = NULL;
	if (dlinfo(h, RTLD_DI_LINKMAP, &lm) == 0 && lm != NULL)
		printf("libcuda %s\n", lm->l_name);
	int (*init)(unsigned int) = (int (*)(unsigned int))dlsym(h, "cuInit");
	if (init == NULL) {
		printf("dlsym %s\n", dlerror());
		return 1;
	}
	int r = init(0);
	printf("cuInit %d\n", r);
	return r == 100 ? 0 : 1;
}

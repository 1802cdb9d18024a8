let
  mk = attrs: derivation ({ system = "x86_64-linux"; builder = "/bin/sh"; args = [ "-c" "echo ok > $out" ]; } // attrs);
in {
  plain-cuda = mk { name = "plain-cuda"; requiredSystemFeatures = [ "cuda" ]; };
  no-features = mk { name = "no-features"; weird = "quote \" backslash \\ newline \n tab \t cr \r done"; };
  several = mk { name = "several"; requiredSystemFeatures = [ "big-parallel" "kvm" "nvidia-gpu" "opengl" ]; };
  other-features = mk { name = "other-features"; requiredSystemFeatures = [ "kvm" "big-parallel" ]; };
  structured-cuda = mk { name = "structured-cuda"; __structuredAttrs = true; requiredSystemFeatures = [ "cuda" ]; nested = { a = [ 1 2 "x\"y" ]; }; };
  structured-none = mk { name = "structured-none"; __structuredAttrs = true; requiredSystemFeatures = [ ]; };
  multi-output = mk { name = "multi-output"; outputs = [ "out" "dev" ]; requiredSystemFeatures = [ "opengl" ]; };
}

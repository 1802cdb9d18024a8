let
  fx = import ./fx.nix;
in derivation { name = "with-inputs"; system = "x86_64-linux"; builder = "/bin/sh"; args = [ "-c" "cat ${./src.txt} ${fx.plain-cuda} ${fx.multi-output.dev} > $out" ]; requiredSystemFeatures = [ "kvm" "cuda" ]; }

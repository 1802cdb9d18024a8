# Evaluates nix/home-manager.nix and nix/system-manager.nix with a small
# stand-in for nixpkgs' module system (lib.evalModules, which cannot be
# fetched here) and the stand-in nixpkgs of testdata/nix/pkgs.nix, and
# checks what they define. scripts/nixcheck.sh runs
#   nix-instantiate --eval --strict nix/modules-check.nix
# and expects `true`.
#
# The stand-in's limits, against lib.evalModules:
#   - options are mkOption values in nested attribute sets; no submodules
#     (an attrsOf option's definitions are merged as plain attribute sets),
#     no imports, no disabledModules, no freeformType, no specialArgs but
#     pkgs;
#   - definitions may use mkIf, mkMerge and mkDefault/mkOverride, pushed
#     down to the options as the real one does (so a condition may read
#     config); of one option's definitions the highest priority wins, lists
#     concatenate, attribute sets merge, two different values of one
#     priority are an error;
#   - a definition no option declares is an error, as in the real system;
#     the hosts' own options (home.packages and lib for home-manager;
#     environment.systemPackages, systemd.services and nix.settings for
#     system-manager) are declared here with the types those projects give
#     them;
#   - types check only bool, str, list, package and attribute set values;
#     no option documentation is rendered (description, example and
#     defaultText are accepted and ignored).
let
  pkgs = import ../testdata/nix/pkgs.nix { };

  isType = t: v: builtins.isAttrs v && v._type or null == t;

  # Option types: a name, a check and how definitions merge.
  types = {
    bool = {
      name = "bool";
      check = builtins.isBool;
      merge = "unique";
    };
    str = {
      name = "str";
      check = builtins.isString;
      merge = "unique";
    };
    package = {
      name = "package";
      check = v: isType "derivation" v || builtins.isAttrs v && v ? outPath;
      merge = "unique";
    };
    listOf = elem: {
      name = "listOf ${elem.name}";
      check = v: builtins.isList v && builtins.all elem.check v;
      merge = "concat";
    };
    attrsOf = elem: {
      name = "attrsOf ${elem.name}";
      check = builtins.isAttrs;
      merge = "attrs";
    };
    anything = {
      name = "anything";
      check = _: true;
      merge = "attrs";
    };
    attrs = types.attrsOf types.anything;
  };

  lib = pkgs.lib // {
    inherit types;
    mkOption = args: args // { _type = "option"; };
    mkEnableOption =
      what:
      lib.mkOption {
        type = types.bool;
        default = false;
        description = "Whether to enable ${what}.";
      };
    mkIf = condition: content: {
      _type = "if";
      inherit condition content;
    };
    mkMerge = contents: {
      _type = "merge";
      inherit contents;
    };
    mkOverride = priority: content: {
      _type = "override";
      inherit priority content;
    };
    mkDefault = lib.mkOverride 1000;
    literalExpression = text: {
      _type = "literalExpression";
      inherit text;
    };
  };

  # recursiveMerge A B: B's attributes over A's, attribute sets merged and
  # lists concatenated.
  recursiveMerge =
    a: b:
    a
    // builtins.mapAttrs (
      n: v:
      if a ? ${n} && builtins.isAttrs v && builtins.isAttrs a.${n} && !(v ? outPath) then
        recursiveMerge a.${n} v
      else if a ? ${n} && builtins.isList v && builtins.isList a.${n} then
        a.${n} ++ v
      else
        v
    ) b;

  # recursiveMergeAll: recursiveMerge over a list.
  recursiveMergeAll = builtins.foldl' recursiveMerge { };

  # atName NAME DEF: the definitions DEF gives for attribute NAME, with the
  # mkIf and mkOverride around them kept (not yet decided).
  atName =
    name: def:
    if isType "merge" def then
      builtins.concatMap (atName name) def.contents
    else if isType "if" def then
      map (d: lib.mkIf def.condition d) (atName name def.content)
    else if isType "override" def then
      map (d: lib.mkOverride def.priority d) (atName name def.content)
    else if builtins.isAttrs def && def ? ${name} then
      [ def.${name} ]
    else
      [ ];

  # resolve DEF: [ { priority; value; } ], mkIf decided, mkMerge flattened.
  resolve =
    priority: def:
    if isType "merge" def then
      builtins.concatMap (resolve priority) def.contents
    else if isType "if" def then
      (if def.condition then resolve priority def.content else [ ])
    else if isType "override" def then
      resolve def.priority def.content
    else
      [
        {
          inherit priority;
          value = def;
        }
      ];

  # The names a definition defines at this level (mkIf not decided: a
  # name under a false condition is still checked against the options).
  namesOf =
    def:
    if isType "merge" def then
      builtins.concatMap namesOf def.contents
    else if isType "if" def || isType "override" def then
      namesOf def.content
    else if builtins.isAttrs def then
      builtins.attrNames def
    else
      [ ];

  # evalOption PATH OPT DEFS: the option's value from its definitions.
  evalOption =
    path: opt: defs:
    let
      resolved = builtins.concatMap (resolve 100) defs;
      best = builtins.foldl' (m: d: if d.priority < m then d.priority else m) 9999 resolved;
      values = map (d: d.value) (builtins.filter (d: d.priority == best) resolved);
      type = opt.type or types.anything;
      merged =
        if values == [ ] then
          (if opt ? default then opt.default else throw "modules-check: ${path} is used but not defined")
        else if type.merge == "concat" then
          builtins.concatLists values
        else if type.merge == "attrs" then
          recursiveMergeAll values
        else if builtins.all (v: v == builtins.head values) values then
          builtins.head values
        else
          throw "modules-check: ${path} has conflicting definitions";
    in
    if type.check merged then merged else throw "modules-check: ${path} is not of type ${type.name}";

  # evalTree PATH OPTS DEFS: the config under OPTS from the definitions.
  evalTree =
    path: opts: defs:
    let
      undeclared = builtins.filter (n: !(opts ? ${n})) (builtins.concatMap namesOf defs);
    in
    if undeclared != [ ] then
      throw "modules-check: ${path}${builtins.head undeclared} is defined but no module declares it"
    else
      builtins.mapAttrs (
        name: opt:
        let
          sub = builtins.concatMap (atName name) defs;
        in
        if isType "option" opt then
          evalOption "${path}${name}" opt sub
        else
          evalTree "${path}${name}." opt sub
      ) opts;

  # evalModules { modules }: { config; }.
  evalModules =
    { modules }:
    let
      args = {
        inherit config lib pkgs;
        options = declared;
      };
      load = m: if builtins.isPath m then import m else m;
      results = map (m: if builtins.isFunction (load m) then load m args else load m) modules;
      declared = recursiveMergeAll (map (r: r.options or { }) results);
      defs = map (r: if r ? options || r ? config then r.config or { } else r) results;
      config = evalTree "" declared defs;
    in
    {
      inherit config;
    };

  # The hosts' own options.
  homeManager = {
    options = {
      home.packages = lib.mkOption {
        type = types.listOf types.package;
        default = [ ];
      };
      lib = lib.mkOption {
        type = types.attrsOf types.attrs;
        default = { };
      };
    };
  };
  systemManager = {
    options = {
      environment.systemPackages = lib.mkOption {
        type = types.listOf types.package;
        default = [ ];
      };
      systemd.services = lib.mkOption {
        type = types.attrsOf types.anything;
        default = { };
      };
      nix.settings = lib.mkOption {
        type = types.attrsOf types.anything;
        default = { };
      };
    };
  };

  home = user: (evalModules { modules = [ homeManager ./home-manager.nix user ]; }).config;
  system = user: (evalModules { modules = [ systemManager ./system-manager.nix user ]; }).config;

  # A package to wrap, and one to stand for nixglhost.
  app = pkgs.runCommand "app-1.0" {
    meta.mainProgram = "app";
  } "mkdir -p $out/bin";
  other = pkgs.runCommand "nixglhost-other" { meta.mainProgram = "nixglhost"; } "mkdir $out";

  check = cond: msg: if cond then true else throw "modules-check: ${msg}";

  # The unit file's KEY= lines, @bindir@ replaced by BIN.
  unitFile = builtins.readFile ./nixglhost-run-opengl-driver.service;
  unitLines = builtins.filter builtins.isString (builtins.split "\n" unitFile);
  unitValues =
    key: bin:
    map (l: builtins.replaceStrings [ "@bindir@" ] [ bin ] (builtins.substring (builtins.stringLength key + 1) (-1) l)) (
      builtins.filter (l: builtins.substring 0 (builtins.stringLength key + 1) l == "${key}=") unitLines
    );

  homeChecks =
    let
      on = home {
        programs.nixglhost.enable = true;
        programs.nixglhost.flags = [ "--mesa" ];
      };
      off = home { };
      mine = home {
        programs.nixglhost.package = other;
      };
      pkg = on.programs.nixglhost.package;
    in
    [
      (check (on.home.packages == [ pkg ]) "home-manager: enable puts the package in home.packages")
      (check (off.home.packages == [ ]) "home-manager: disabled, home.packages stays empty")
      (check (pkg.attrs.pname == "nixglhost") "home-manager: the default package is package.nix")
      (check ((on.lib.nixglhost.wrap app).nixglhostFlags == "--mesa") "home-manager: config.lib.nixglhost.wrap passes programs.nixglhost.flags")
      (check ((on.lib.nixglhost.wrapOffload app).nixglhostFlags == "--mesa --prime") "home-manager: wrapOffload adds --prime")
      (check ((on.lib.nixglhost.wrapWith { flags = [ "-d" "/opt/x y" ]; } app).nixglhostFlags == "-d '/opt/x y'") "home-manager: wrapWith takes its own flags")
      (check ((off.lib.nixglhost.wrap app).nixglhost == "${off.programs.nixglhost.package}/bin/nixglhost") "home-manager: wrap is there without enable")
      (check ((mine.lib.nixglhost.wrap app).nixglhost == "${other}/bin/nixglhost") "home-manager: the wrappers use programs.nixglhost.package")
      (check ((on.lib.nixglhost.wrap app).name == app.name) "home-manager: the wrapped package keeps its name")
    ];

  systemChecks =
    let
      on = system {
        services.nixglhost.enable = true;
      };
      hook = system {
        services.nixglhost = {
          enable = true;
          systemMode.enable = false;
          preBuildHook.enable = true;
        };
      };
      off = system {
        services.nixglhost.preBuildHook.enable = true;
      };
      bin = "${on.services.nixglhost.package}/bin";
      unit = on.systemd.services.nixglhost-run-opengl-driver;
      readme = builtins.readFile ../README.md;
      features = builtins.concatStringsSep " " hook.services.nixglhost.preBuildHook.features;
    in
    [
      (check (on.environment.systemPackages == [ on.services.nixglhost.package ]) "system-manager: the package is installed")
      (check (unit.serviceConfig.ExecStart == unitValues "ExecStart" bin) "system-manager: ExecStart differs from nix/nixglhost-run-opengl-driver.service")
      (check ([ unit.serviceConfig.ExecStop ] == unitValues "ExecStop" bin) "system-manager: ExecStop differs from the unit file")
      (check ([ (builtins.concatStringsSep " " unit.after) ] == unitValues "After" bin) "system-manager: After differs from the unit file")
      (check ([ unit.description ] == unitValues "Description" bin) "system-manager: Description differs from the unit file")
      (check ([ unit.unitConfig.ConditionPathExists ] == unitValues "ConditionPathExists" bin) "system-manager: the NixOS condition differs from the unit file")
      (check ([ unit.serviceConfig.Type ] == unitValues "Type" bin) "system-manager: Type differs from the unit file")
      (check (unit.wantedBy == [ "system-manager.target" ]) "system-manager: started at switch and boot")
      (check (on.nix.settings == { }) "system-manager: no nix.conf lines without preBuildHook.enable")
      (check (hook.systemd.services == { }) "system-manager: systemMode.enable = false, no unit")
      (check (hook.nix.settings.pre-build-hook == "${bin}/nixglhost-pre-build-hook") "system-manager: pre-build-hook")
      (check (builtins.match ".*\nextra-system-features = ${features}\n.*" readme != null) "system-manager: the default features are not README's nix.conf line (${features})")
      (check (off.systemd.services == { } && off.nix.settings == { } && off.environment.systemPackages == [ ]) "system-manager: nothing without enable")
    ];
in
builtins.all (x: x) (homeChecks ++ systemChecks)

"""Regenerate the Kubernetes protobuf schema the API server double decodes with.

kubectl 1.32 and later send ``application/vnd.kubernetes.protobuf`` bodies for
``kubectl create namespace|configmap|secret|deployment|...``; the double turns them
into the JSON object the same Go struct would have marshalled to. Two files under
``specc/data/kubernetes-protobuf/`` describe the wire and the JSON shape:

- ``descriptors.binpb``: a FileDescriptorSet compiled by protoc (from grpcio-tools)
  from the ``generated.proto`` files of k8s.io/api, k8s.io/apimachinery and
  k8s.io/apiextensions-apiserver. The protobuf library parses the wire with it.
- ``shapes.json``: what the .proto files do not say and Go's encoding/json needs:
  per message field its JSON name, whether the Go field is a pointer, ``omitempty``,
  ``omitzero`` or inlined; the Go types with their own MarshalJSON; named slice
  types (proto wrapper messages with ``items``); and which message each registered
  group/version/kind is. It is read off the Go types by reflection (a small Go
  program built against the same module versions).

Run ``tools/kube-protobuf`` (Go on PATH, the Go module proxy reachable; it installs
grpcio-tools in a throw-away virtualenv, as grpcio-tools is no dependency of specc), or
by hand: ``python tools/gen_kube_protobuf.py specc/data/kubernetes-protobuf``.

``tests/test_apiserver_protobuf.py`` checks that the two files agree with each other and
cover every kind the double serves; the slow test re-runs this script and compares.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

#: The module versions of the real control plane the double is checked against (1.36.3).
VERSION = "v0.36.3"
MODULES = ("k8s.io/api", "k8s.io/apimachinery", "k8s.io/apiextensions-apiserver")
#: apimachinery's own .proto files that API objects import (its testdata is left out).
APIMACHINERY_PROTOS = (
    "pkg/api/resource",
    "pkg/apis/meta/v1",
    "pkg/apis/meta/v1beta1",
    "pkg/runtime",
    "pkg/runtime/schema",
    "pkg/util/intstr",
)
APIEXTENSIONS_PACKAGES = ("pkg/apis/apiextensions/v1", "pkg/apis/apiextensions/v1beta1")

GO_MAIN = r"""
package main

import (
	"encoding/json"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/runtime"
%(imports)s
)

// A field by its proto number as [JSON name, flags]: p pointer, o omitempty, z omitzero,
// i inline, - skipped. (Some embedded fields' protobuf tags carry no name.)
type field [2]string

var marshaler = reflect.TypeOf((*json.Marshaler)(nil)).Elem()

func message(t reflect.Type) string {
	return strings.NewReplacer("/", ".", "-", "_").Replace(t.PkgPath()) + "." + t.Name()
}

func main() {
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
%(adders)s
	} {
		if err := add(scheme); err != nil {
			panic(err)
		}
	}
	messages := map[string]map[string]field{}
	custom := map[string]bool{}
	lists := map[string]bool{}
	seen := map[reflect.Type]bool{}
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for {
			switch t.Kind() {
			case reflect.Pointer, reflect.Array:
				t = t.Elem()
				continue
			case reflect.Slice:
				if t.Name() != "" && t.Elem().Kind() != reflect.Uint8 && strings.HasPrefix(t.PkgPath(), "k8s.io/") {
					lists[message(t)] = true
				}
				t = t.Elem()
				continue
			case reflect.Map:
				walk(t.Key())
				t = t.Elem()
				continue
			}
			break
		}
		if t.Kind() != reflect.Struct || seen[t] || !strings.HasPrefix(t.PkgPath(), "k8s.io/") {
			return
		}
		seen[t] = true
		if t.Implements(marshaler) || reflect.PointerTo(t).Implements(marshaler) {
			custom[message(t)] = true
			return
		}
		fields := map[string]field{}
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			pb := f.Tag.Get("protobuf")
			if pb == "" || !f.IsExported() {
				continue
			}
			parts := strings.Split(pb, ",")
			number, err := strconv.Atoi(parts[1])
			if err != nil {
				panic(err)
			}
			tag := strings.Split(f.Tag.Get("json"), ",")
			flags := ""
			if f.Type.Kind() == reflect.Pointer {
				flags += "p"
			}
			for _, opt := range tag[1:] {
				switch opt {
				case "omitempty":
					flags += "o"
				case "omitzero":
					flags += "z"
				case "inline":
					flags += "i"
				}
			}
			if tag[0] == "" && f.Anonymous && !strings.Contains(flags, "i") {
				flags += "i"
			}
			if tag[0] == "-" {
				flags += "-"
			}
			fields[strconv.Itoa(number)] = field{tag[0], flags}
			walk(f.Type)
		}
		messages[message(t)] = fields
	}
	kinds := map[string]map[string]string{}
	for gvk, t := range scheme.AllKnownTypes() {
		if gvk.Version == runtime.APIVersionInternal {
			continue
		}
		walk(t)
		gv := gvk.GroupVersion().String()
		if kinds[gv] == nil {
			kinds[gv] = map[string]string{}
		}
		kinds[gv][gvk.Kind] = message(t)
	}
	keys := func(m map[string]bool) []string {
		out := []string{}
		for k := range m {
			out = append(out, k)
		}
		sort.Strings(out)
		return out
	}
	out := map[string]any{
		"messages":     messages,
		"customJSON":   keys(custom),
		"listWrappers": keys(lists),
		"kinds":        kinds,
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		panic(err)
	}
}
"""


def _run(args: list[str], cwd: Path) -> str:
    env = {**os.environ, "GOFLAGS": "-mod=mod", "GOWORK": "off"}
    return subprocess.run(args, cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout


def _module_dirs(work: Path) -> dict[str, Path]:
    (work / "go.mod").write_text(
        "module specc.dev/kubeproto\n\ngo 1.24\n\nrequire (\n"
        + "".join(f"\t{m} {VERSION}\n" for m in MODULES)
        + ")\n"
    )
    (work / "main.go").write_text(
        'package main\n\nimport (\n\t_ "k8s.io/api/core/v1"\n'
        '\t_ "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"\n)\n\nfunc main() {}\n'
    )
    _run(["go", "mod", "tidy"], work)
    return {m: Path(_run(["go", "list", "-m", "-f", "{{.Dir}}", m], work).strip()) for m in MODULES}


def _proto_files(dirs: dict[str, Path]) -> list[str]:
    """Return the import paths (``k8s.io/api/apps/v1/generated.proto``) to compile."""
    api = sorted(
        str(p.parent.relative_to(dirs["k8s.io/api"]))
        for p in dirs["k8s.io/api"].rglob("generated.proto")
    )
    files = [f"k8s.io/api/{d}/generated.proto" for d in api]
    files += [f"k8s.io/apimachinery/{d}/generated.proto" for d in APIMACHINERY_PROTOS]
    files += [f"k8s.io/apiextensions-apiserver/{d}/generated.proto" for d in APIEXTENSIONS_PACKAGES]
    return files


def _descriptors(dirs: dict[str, Path], files: list[str], work: Path) -> bytes:
    root = work / "protos"
    for module, directory in dirs.items():
        link = root / module
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(directory)
    out = work / "descriptors.binpb"
    # protoc warns about every unused import of the generated files; show only failures.
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{root}",
            f"--descriptor_set_out={out}",
            "--include_imports",
            *files,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"protoc failed:\n{done.stderr}")
    return out.read_bytes()


def _shapes(files: list[str], work: Path) -> dict[str, object]:
    packages = [
        f.removesuffix("/generated.proto")
        for f in files
        if f.startswith(("k8s.io/api/", "k8s.io/apiextensions-apiserver/"))
    ]
    imports = "\n".join(f'\tp{i} "{p}"' for i, p in enumerate(packages))
    adders = "\n".join(f"\t\tp{i}.AddToScheme," for i in range(len(packages)))
    (work / "main.go").write_text(GO_MAIN % {"imports": imports, "adders": adders})
    _run(["go", "mod", "tidy"], work)
    shapes: dict[str, Any] = json.loads(_run(["go", "run", "."], work))
    return shapes


def _message_names(descriptors: bytes) -> set[str]:
    from google.protobuf import descriptor_pb2

    names: set[str] = set()

    def collect(prefix: str, messages: Any) -> None:
        for message in messages:
            names.add(f"{prefix}.{message.name}")
            collect(f"{prefix}.{message.name}", message.nested_type)

    for file in descriptor_pb2.FileDescriptorSet.FromString(descriptors).file:
        collect(file.package, file.message_type)
    return names


def generate(out: Path) -> None:
    """Write descriptors.binpb and shapes.json into ``out``."""
    with tempfile.TemporaryDirectory(prefix="specc-kubeproto-") as tmp:
        work = Path(tmp)
        dirs = _module_dirs(work)
        files = _proto_files(dirs)
        descriptors = _descriptors(dirs, files, work)
        shapes = _shapes(files, work)
    # Named slice types are wrapper messages only where go-to-protobuf made them so (in
    # map values); elsewhere the slice is a plain repeated field.
    known = _message_names(descriptors)
    shapes["listWrappers"] = [name for name in shapes["listWrappers"] if name in known]
    missing = sorted(set(shapes["messages"]) - known)
    if missing:
        raise SystemExit(f"Go types without a proto message: {missing}")
    header = {
        "generated": "by tools/kube-protobuf (tools/gen_kube_protobuf.py); do not edit",
        "modules": {m: VERSION for m in MODULES},
        "descriptorsSha256": hashlib.sha256(descriptors).hexdigest(),
        "protoFiles": files,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "descriptors.binpb").write_bytes(descriptors)
    (out / "shapes.json").write_text(_format({**header, **shapes}))


def _format(document: dict[str, object]) -> str:
    """Return the JSON with one line per message or group/version: readable diffs."""
    lines = []
    for key, value in sorted(document.items()):
        if isinstance(value, dict):
            inner = ",\n".join(
                f"  {json.dumps(k)}: {json.dumps(v, sort_keys=True)}"
                for k, v in sorted(value.items())
            )
            lines.append(f"{json.dumps(key)}: {{\n{inner}\n }}")
        else:
            lines.append(f"{json.dumps(key)}: {json.dumps(value)}")
    return "{\n " + ",\n ".join(lines) + "\n}\n"


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: gen_kube_protobuf.py OUT_DIR")
    generate(Path(sys.argv[1]))

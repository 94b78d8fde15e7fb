// Package manifests renders the deployment as its users do — the kustomize
// base with kustomize's own library (what `kubectl apply -k` runs), the Helm
// chart with Helm's (what `helm template` and `helm install` run) — and
// decodes the result strictly into the Kubernetes and Prometheus Operator
// API types, so that a misspelt or misplaced field fails a test instead of
// being dropped by the API server.
//
// Only tests import it: deploy's and cmd/nodeagent's share it.
package manifests

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	releasev1 "helm.sh/helm/v4/pkg/release/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	clientscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// Object is one decoded manifest document.
type Object struct {
	// Kind and Name identify it in messages.
	Kind, Name, Namespace string
	// Obj is the typed object: a k8s.io/api type, a monitoring/v1 type, or
	// *Certificate.
	Obj any
}

// Kustomize builds the kustomization in dir as `kubectl apply -k` and
// `kustomize build` do, and returns the YAML stream.
func Kustomize(dir string) ([]byte, error) {
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, fmt.Errorf("kustomize build %s: %w", dir, err)
	}
	out, err := m.AsYaml()
	if err != nil {
		return nil, fmt.Errorf("kustomize build %s: %w", dir, err)
	}
	return out, nil
}

// Release is a rendered chart.
type Release struct {
	// Manifest is the YAML stream `helm template` prints, each document
	// after a "# Source: <chart>/templates/<file>" line.
	Manifest string
	// Notes is the rendered NOTES.txt.
	Notes string
}

// APIVersions are the API groups the chart's optional objects need; `helm
// template` is told about them as with --api-versions.
var APIVersions = []string{"monitoring.coreos.com/v1", "cert-manager.io/v1"}

// HelmTemplate renders the chart in dir as `helm template <release> <dir>
// --namespace <namespace>` does, with values as --values would give them.
func HelmTemplate(dir, release, namespace string, values map[string]any) (*Release, error) {
	ch, err := loader.LoadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("loading chart %s: %w", dir, err)
	}
	cfg := action.NewConfiguration()
	cfg.SetLogger(slog.New(slog.DiscardHandler).Handler())
	install := action.NewInstall(cfg)
	install.DryRunStrategy = action.DryRunClient
	install.ReleaseName = release
	install.Namespace = namespace
	install.Replace = true // no name check, as helm template
	install.APIVersions = common.VersionSet(APIVersions)
	if values == nil {
		values = map[string]any{}
	}
	r, err := install.Run(ch, values)
	if err != nil {
		return nil, fmt.Errorf("helm template %s: %w", dir, err)
	}
	rel, ok := r.(*releasev1.Release)
	if !ok {
		return nil, fmt.Errorf("helm template %s: unexpected release type %T", dir, r)
	}
	notes := ""
	if rel.Info != nil {
		notes = rel.Info.Notes
	}
	return &Release{Manifest: rel.Manifest, Notes: notes}, nil
}

// HelmLint runs `helm lint --strict` over the chart in dir with values and
// returns every finding of warning severity or worse.
func HelmLint(dir, namespace string, values map[string]any) error {
	lint := action.NewLint()
	lint.Strict = true
	lint.Namespace = namespace
	res := lint.Run([]string{dir}, values)
	if res.TotalChartsLinted != 1 && len(res.Errors) == 0 {
		return fmt.Errorf("helm lint %s: linted %d charts", dir, res.TotalChartsLinted)
	}
	return errors.Join(res.Errors...)
}

// SplitBySource splits a `helm template` stream into its templates' output,
// keyed by the path after "<chart>/" in its "# Source:" line.
func SplitBySource(manifest string) map[string]string {
	out := map[string]string{}
	for _, doc := range strings.Split(manifest, "\n---\n") {
		doc = strings.TrimPrefix(strings.TrimSpace(doc), "---\n")
		first, rest, _ := strings.Cut(doc, "\n")
		src, ok := strings.CutPrefix(first, "# Source: ")
		if !ok {
			continue
		}
		if _, path, ok := strings.Cut(src, "/"); ok {
			src = path
		}
		if out[src] != "" {
			out[src] += "---\n"
		}
		out[src] += rest + "\n"
	}
	return out
}

// Certificate is the part of cert-manager's Certificate the chart renders;
// decoded strictly, a field it does not know fails.
type Certificate struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string            `json:"name"`
		Namespace string            `json:"namespace"`
		Labels    map[string]string `json:"labels"`
	} `json:"metadata"`
	Spec struct {
		SecretName  string   `json:"secretName"`
		DNSNames    []string `json:"dnsNames"`
		Usages      []string `json:"usages"`
		Duration    string   `json:"duration"`
		RenewBefore string   `json:"renewBefore"`
		PrivateKey  struct {
			Algorithm      string `json:"algorithm"`
			Size           int    `json:"size"`
			RotationPolicy string `json:"rotationPolicy"`
		} `json:"privateKey"`
		IssuerRef struct {
			Name  string `json:"name"`
			Kind  string `json:"kind"`
			Group string `json:"group"`
		} `json:"issuerRef"`
	} `json:"spec"`
}

// Decode splits a YAML stream and decodes every document strictly (unknown
// and duplicate fields are errors) into its API type. It fails on kinds it
// does not know.
func Decode(stream []byte) ([]Object, error) {
	scheme := runtime.NewScheme()
	if err := clientscheme.AddToScheme(scheme); err != nil {
		return nil, err
	}
	if err := monitoringv1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	decoder := serializer.NewCodecFactory(scheme, serializer.EnableStrict).UniversalDeserializer()
	var out []Object
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(stream)))
	for n := 1; ; n++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", n, err)
		}
		var meta struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Metadata   struct {
				Name      string `json:"name"`
				Namespace string `json:"namespace"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal(doc, &meta); err != nil {
			return nil, fmt.Errorf("document %d: %w", n, err)
		}
		if meta.Kind == "" {
			if len(bytes.TrimSpace(stripComments(doc))) == 0 {
				continue
			}
			return nil, fmt.Errorf("document %d has no kind:\n%s", n, doc)
		}
		o := Object{Kind: meta.Kind, Name: meta.Metadata.Name, Namespace: meta.Metadata.Namespace}
		if meta.APIVersion == "cert-manager.io/v1" && meta.Kind == "Certificate" {
			c := &Certificate{}
			if err := yaml.UnmarshalStrict(doc, c); err != nil {
				return nil, fmt.Errorf("%s %s: %w", meta.Kind, meta.Metadata.Name, err)
			}
			o.Obj = c
		} else {
			obj, _, err := decoder.Decode(doc, nil, nil)
			if err != nil {
				return nil, fmt.Errorf("%s %s: %w", meta.Kind, meta.Metadata.Name, err)
			}
			o.Obj = obj
		}
		out = append(out, o)
	}
}

// stripComments drops YAML comment lines.
func stripComments(doc []byte) []byte {
	var out []byte
	for _, line := range bytes.Split(doc, []byte("\n")) {
		if t := bytes.TrimSpace(line); len(t) > 0 && t[0] != '#' {
			out = append(out, line...)
			out = append(out, '\n')
		}
	}
	return out
}

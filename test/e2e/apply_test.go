package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"
)

// applier applies manifests (any kind, the cluster's discovery maps it) by
// server-side apply, as `kubectl apply --server-side` would, so that the
// e2e tests need no kubectl.
type applier struct {
	dyn    dynamic.Interface
	mapper *restmapper.DeferredDiscoveryRESTMapper
}

func newApplier(t *testing.T, env map[string]string) *applier {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", env["KUBECONFIG"])
	if err != nil {
		t.Fatal(err)
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &applier{dyn: dyn, mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))}
}

// decodeManifests splits YAML documents into objects, skipping empty ones.
func decodeManifests(data []byte) ([]*unstructured.Unstructured, error) {
	var out []*unstructured.Unstructured
	for _, doc := range bytes.Split(data, []byte("\n---")) {
		obj := map[string]any{}
		if err := yaml.Unmarshal(doc, &obj); err != nil {
			return nil, err
		}
		if len(obj) == 0 {
			continue
		}
		out = append(out, &unstructured.Unstructured{Object: obj})
	}
	return out, nil
}

// applyFiles applies every object of the files; namespaced objects without
// a namespace go to ns. It returns how many objects it applied.
func (a *applier) applyFiles(t *testing.T, ns string, files ...string) int {
	t.Helper()
	n := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		objs, err := decodeManifests(data)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, obj := range objs {
			if err := a.apply(context.Background(), ns, obj); err != nil {
				t.Fatalf("%s: %s %s: %v", filepath.Base(f), obj.GetKind(), obj.GetName(), err)
			}
			n++
		}
	}
	return n
}

func (a *applier) apply(ctx context.Context, ns string, obj *unstructured.Unstructured) error {
	gvk := obj.GroupVersionKind()
	var m *meta.RESTMapping
	var err error
	// A kind whose CRD was just applied appears in discovery a moment later.
	for i := 0; i < 30; i++ {
		if m, err = a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version); err == nil {
			break
		}
		a.mapper.Reset()
		time.Sleep(time.Second)
	}
	if err != nil {
		return err
	}
	res := a.dyn.Resource(m.Resource)
	opts := metav1.ApplyOptions{FieldManager: "nodeagent-e2e", Force: true}
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		if obj.GetNamespace() == "" {
			obj.SetNamespace(ns)
		}
		_, err = res.Namespace(obj.GetNamespace()).Apply(ctx, obj.GetName(), obj, opts)
	} else {
		_, err = res.Apply(ctx, obj.GetName(), obj, opts)
	}
	if err != nil {
		return fmt.Errorf("apply %s: %w", m.Resource, err)
	}
	return nil
}

package kubeletclient

import (
	"os"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/nodeagent/nodeagent/internal/fakekubelet"
	"github.com/nodeagent/nodeagent/internal/podmeta"
)

func ts(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestDecodePodsKinds(t *testing.T) {
	t.Parallel()
	body, err := os.ReadFile("testdata/pods-kinds.json")
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodePods(body)
	if err != nil {
		t.Fatal(err)
	}
	const uid = "11111111-2222-3333-4444-555555555555"
	want := &podmeta.Snapshot{
		Pods: map[string]podmeta.Pod{
			uid:                                    {UID: uid, Namespace: "shop", Name: "web-0", StartTime: ts("2026-06-01T10:00:00Z")},
			"99999999-2222-3333-4444-555555555555": {UID: "99999999-2222-3333-4444-555555555555", Namespace: "shop", Name: "pending"},
		},
		Containers: map[string]podmeta.Container{
			"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa": {
				ID: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", PodUID: uid, Name: "migrate",
				Image: "ghcr.io/acme/migrate:v2", StartTime: ts("2026-06-01T10:00:01Z")},
			"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb": {
				ID: "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", PodUID: uid, Name: "app",
				Image: "docker.io/library/nginx:latest", StartTime: ts("2026-06-01T10:00:06Z")},
			"dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd": {
				ID: "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd", PodUID: uid, Name: "debugger",
				Image: "docker.io/library/busybox:1.36", StartTime: ts("2026-06-01T11:00:00Z")},
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("DecodePods (-want +got):\n%s", diff)
	}
}

// TestDecodePodsRealCapture decodes the real Kubernetes 1.35 /pods capture.
func TestDecodePodsRealCapture(t *testing.T) {
	t.Parallel()
	snap, err := DecodePods(fakekubelet.Payload(t, "k8s-1.35_pods.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Pods) != 24 || len(snap.Containers) != 24 {
		t.Errorf("%d pods, %d containers; want 24 and 24", len(snap.Pods), len(snap.Containers))
	}
	// A static pod: its UID is the config hash.
	if p := snap.Pods["8ac8c3a9ee4d182b8d934f20e971ada7"]; p.Name != "kube-apiserver-datagen-1-35" || p.Namespace != "kube-system" {
		t.Errorf("static pod: %+v", p)
	}
	c := snap.Containers["fe888b5a90a7d62f7b6ab92186e0a2c79e21d75bc864a94c0d64ef170290273f"]
	want := podmeta.Container{
		ID: "fe888b5a90a7d62f7b6ab92186e0a2c79e21d75bc864a94c0d64ef170290273f", PodUID: "5e5613d6-fccb-40d6-967b-447697d4d871",
		Name:      "metrics-server",
		Image:     "registry.k8s.io/metrics-server/metrics-server@sha256:b2d2efaf5ac3b366ed0f839d2412a2c4279d4fc2a2a733f12c52133faed36c41",
		StartTime: ts("2026-06-26T10:12:45Z"),
	}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Errorf("metrics-server container (-want +got):\n%s", diff)
	}
}

func TestDecodePodsGarbage(t *testing.T) {
	t.Parallel()
	for _, body := range []string{"", "<html>502 Bad Gateway</html>", `{"items": [`, `{"items": "nope"}`} {
		if _, err := DecodePods([]byte(body)); err == nil {
			t.Errorf("DecodePods(%q) accepted garbage", body)
		}
	}
}

func TestNormalizeImage(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"alpine", "docker.io/library/alpine:latest"},
		{"docker.io/library/alpine:latest", "docker.io/library/alpine:latest"},
		{"nginx:alpine", "docker.io/library/nginx:alpine"},
		{"kindest/kindnetd:v20260213-ea8e5717", "docker.io/kindest/kindnetd:v20260213-ea8e5717"},
		{"registry.k8s.io/pause:3.10.1", "registry.k8s.io/pause:3.10.1"},
		{"localhost:5000/app", "localhost:5000/app:latest"},
		{"registry.k8s.io/metrics-server/metrics-server:v0.8.1@sha256:b2d2efaf5ac3b366ed0f839d2412a2c4279d4fc2a2a733f12c52133faed36c41",
			"registry.k8s.io/metrics-server/metrics-server@sha256:b2d2efaf5ac3b366ed0f839d2412a2c4279d4fc2a2a733f12c52133faed36c41"},
		{"Not A Reference", "Not A Reference"},
		{"", ""},
	} {
		if got := NormalizeImage(tc.in); got != tc.want {
			t.Errorf("NormalizeImage(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func FuzzDecodePods(f *testing.F) {
	f.Add([]byte(`{"items":[{"metadata":{"uid":"u"},"status":{"containerStatuses":[{"containerID":"containerd://x","state":{"running":{}}}]}}]}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		snap, err := DecodePods(body)
		if err == nil && (snap == nil || snap.Pods == nil || snap.Containers == nil) {
			t.Fatal("nil maps without an error")
		}
	})
}

// BenchmarkDecodePods is the CPU cost of one pod metadata refresh (the
// real 1.35 /pods, 24 pods, 128 KB), network aside.
func BenchmarkDecodePods(b *testing.B) {
	body := fakekubelet.Payload(b, "k8s-1.35_pods.json")
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := DecodePods(body); err != nil {
			b.Fatal(err)
		}
	}
}

package kubeletclient

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/nodeagent/nodeagent/internal/fakekubelet"
)

func TestReadOnlyPortOpen(t *testing.T) {
	t.Parallel()
	k := fakekubelet.New(t)
	notKubelet := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("hello from something else"))
	}))
	t.Cleanup(notKubelet.Close)
	u, err := url.Parse(notKubelet.URL)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		port     string
		wantOpen bool
		wantErr  error  // nil: the state is known
		want     string // in the error
	}{
		{name: "a kubelet's read-only server", port: fmt.Sprint(fakekubelet.ReadOnly(t).Port), wantOpen: true},
		{name: "nothing listening", port: fmt.Sprint(fakekubelet.ClosedPort(t))},
		{name: "accepts and never answers", port: fmt.Sprint(fakekubelet.Silent(t)), wantErr: ErrTimeout, want: "no complete answer in time"},
		{name: "something else answers", port: u.Port(), wantErr: ErrBadBody, want: "answers HTTP, but GET http://127.0.0.1:" + u.Port() + "/pods is not a kubelet's pod list"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, _, _ := newTestClient(t, k, "--kubelet.readonly-port="+tc.port, "--kubelet.readonly-port-timeout=300ms")
			open, err := c.ReadOnlyPortOpen(context.Background())
			if tc.wantErr == nil {
				if err != nil || open != tc.wantOpen {
					t.Fatalf("ReadOnlyPortOpen = %v, %v; want %v, nil", open, err, tc.wantOpen)
				}
				return
			}
			if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ReadOnlyPortOpen = %v, %v; want an error (%v) with %q: unknown, never closed", open, err, tc.wantErr, tc.want)
			}
			if open {
				t.Error("reported open along with an error")
			}
		})
	}
}

func TestAnonymousAuthEnabled(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		setup   func(*fakekubelet.Kubelet)
		want    bool
		wantErr error
	}{
		{name: "anonymous off (401)", setup: func(*fakekubelet.Kubelet) {}},
		{name: "anonymous on and authorized", setup: func(k *fakekubelet.Kubelet) { k.SetAnonymous([]string{"*"}) }, want: true},
		{name: "anonymous on, RBAC denies (403)", setup: func(k *fakekubelet.Kubelet) { k.SetAnonymous([]string{}) }, want: true},
		{name: "kubelet down", setup: func(k *fakekubelet.Kubelet) { k.Stop() }, wantErr: ErrUnreachable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			k := fakekubelet.New(t)
			// Our own credentials must not leak into the check.
			c, _, _ := newTestClient(t, k, certArgs(k)...)
			tc.setup(k)
			got, err := c.AnonymousAuthEnabled(context.Background())
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) || got != tc.want {
				t.Fatalf("AnonymousAuthEnabled = %v, %v; want %v, %v", got, err, tc.want, tc.wantErr)
			}
			if tc.wantErr == nil && k.Requests("/healthz") != 1 {
				t.Errorf("the kubelet saw %d requests on /healthz; want 1", k.Requests("/healthz"))
			}
		})
	}
}

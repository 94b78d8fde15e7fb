package kubeletclient

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/alecthomas/kingpin/v2"
)

func TestValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		args []string
		want []string // every conflict, reported at once
	}{
		{"defaults", nil, nil},
		{"cert without key", []string{"--kubelet.client-cert-file=c.crt"}, []string{"go together"}},
		{"token and cert", []string{"--kubelet.token-file=t", "--kubelet.client-cert-file=c", "--kubelet.client-key-file=k"}, []string{"two ways to authenticate"}},
		{"cert with the default token file", []string{"--kubelet.client-cert-file=c", "--kubelet.client-key-file=k"}, nil},
		{"CA and insecure", []string{"--kubelet.ca-file=ca.crt", "--kubelet.insecure-skip-verify"}, []string{"contradict"}},
		{"insecure with the default CA", []string{"--kubelet.insecure-skip-verify"}, nil},
		{"http URL", []string{"--kubelet.url=http://10.0.0.1:10250"}, []string{"speaks https"}},
		{"URL without host", []string{"--kubelet.url=https://:10250"}, []string{"has no host"}},
		{"many at once", []string{"--kubelet.readonly-port=0", "--kubelet.timeout=0s", "--kubelet.max-body-size=0B", "--kubelet.security-check-interval=-1s"},
			[]string{"--kubelet.readonly-port must be a port number", "--kubelet.timeout must be positive", "--kubelet.max-body-size must be positive", "--kubelet.security-check-interval must be positive"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var c Config
			app := kingpin.New("test", "")
			app.Terminate(nil)
			app.UsageWriter(io.Discard)
			c.AddFlags(app)
			if _, err := app.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			err := c.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Validate accepted a conflict")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestResolve(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		url      string
		env      map[string]string
		want     string
		wantFrom string
	}{
		{"flag wins", "https://10.0.0.9:10250", map[string]string{"NODE_IP": "10.0.0.1"}, "https://10.0.0.9:10250", "--kubelet.url"},
		{"NODE_IP before NODE_NAME", "", map[string]string{"NODE_IP": "10.0.0.1", "NODE_NAME": "node-1"}, "https://10.0.0.1:10250", "NODE_IP"},
		{"IPv6 NODE_IP", "", map[string]string{"NODE_IP": "fd00::1"}, "https://[fd00::1]:10250", "NODE_IP"},
		{"NODE_NAME", "", map[string]string{"NODE_NAME": "node-1"}, "https://node-1:10250", "NODE_NAME"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := Config{URL: tc.url}
			got, err := c.resolve(func(k string) string { return tc.env[k] })
			if err != nil {
				t.Fatal(err)
			}
			if got.base.String() != tc.want || got.from != tc.wantFrom {
				t.Errorf("resolve = %s from %s; want %s from %s", got.base, got.from, tc.want, tc.wantFrom)
			}
		})
	}
}

func TestResolveNothingTurnsTheLayerOff(t *testing.T) {
	t.Parallel()
	c := Config{}
	_, err := c.resolve(noEnv)
	if !errors.Is(err, ErrNoKubelet) {
		t.Fatalf("error %v; want ErrNoKubelet", err)
	}
	for _, w := range []string{"NODE_IP", "status.hostIP", "--kubelet.url=https://127.0.0.1:10250"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q lacks %q", err, w)
		}
	}
}

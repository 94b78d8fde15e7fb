package main

import (
	"slices"
	"testing"

	"github.com/nodeagent/nodeagent/internal/fakekubelet"
	"github.com/nodeagent/nodeagent/internal/testlog"
)

// TestSystemdDefaultFollowsKubelet: the systemd collector is on by default
// where no kubelet is configured (bare metal) and off where one is, by
// --kubelet.url or the downward API's NODE_IP, unless enabled explicitly.
func TestSystemdDefaultFollowsKubelet(t *testing.T) {
	t.Parallel()
	k := fakekubelet.New(t)
	tls := kubeletArgs(k)[1:] // the kubelet's CA and client certificate, without the URL
	for _, tc := range []struct {
		name   string
		args   []string
		nodeIP string
		want   bool
	}{
		{name: "bare metal", want: true},
		{name: "bare metal, turned off", args: []string{"--no-collector.systemd"}, want: false},
		{name: "kubelet URL", args: kubeletArgs(k), want: false},
		{name: "NODE_IP", args: tls, nodeIP: "127.0.0.1", want: false},
		{name: "kubelet URL, enabled explicitly", args: append(kubeletArgs(k), "--collector.systemd"), want: true},
		{name: "disable defaults, enabled explicitly", args: []string{"--collector.disable-defaults", "--collector.systemd"}, want: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			opts := parseServe(t, append([]string{"--path.cgroupfs=../../collectors/cadvisor/testdata/cadvisor/bare-metal/cgroup"}, tc.args...)...)
			opts.getenv = func(name string) string {
				if name == "NODE_IP" {
					return tc.nodeIP
				}
				return ""
			}
			a, err := newAgent(opts, &testlog.Buffer{})
			if err != nil {
				t.Fatalf("newAgent: %v", err)
			}
			var names []string
			for _, in := range a.scraper.Instances() {
				names = append(names, in.Name)
			}
			if got := slices.Contains(names, "systemd"); got != tc.want {
				t.Errorf("systemd enabled: %v, want %v (enabled: %v)", got, tc.want, names)
			}
			if len(names) < 2 && !slices.Contains(tc.args, "--collector.disable-defaults") {
				t.Errorf("only %v enabled", names)
			}
		})
	}
}

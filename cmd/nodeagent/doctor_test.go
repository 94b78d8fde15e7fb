package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/nodeagent/nodeagent/internal/fakeapiserver"
	"github.com/nodeagent/nodeagent/internal/fakekubelet"
)

// doctorJSON is the part of doctor's JSON output the tests read.
type doctorJSON struct {
	Version   int    `json:"version"`
	Node      string `json:"node"`
	FlagsFrom string `json:"flags_from"`
	Checks    []struct {
		ID, Layer, Verdict, Detail, Fix string
	} `json:"checks"`
	Summary struct {
		OK, Warn, Fail, Skipped int
		ExitCode                int `json:"exit_code"`
	} `json:"summary"`
	Symptom *struct {
		Name, Verdict, Check, Layer, Detail, Fix string
	} `json:"symptom"`
}

func (d doctorJSON) byID() map[string]struct{ ID, Layer, Verdict, Detail, Fix string } {
	m := map[string]struct{ ID, Layer, Verdict, Detail, Fix string }{}
	for _, c := range d.Checks {
		m[c.ID] = c
	}
	return m
}

// TestDoctorUsage: usage errors exit 2, as kingpin's own do.
func TestDoctorUsage(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"doctor", "why", "nope"},
		{"doctor", "why"},
		{"doctor", "why", "pod-missing"},
		{"doctor", "why", "pod-missing", "--pod", "no-namespace"},
		{"doctor", "why", "kubectl-top", "--pod", "ns/pod"},
		{"doctor", "--pod", "ns/pod"},
		{"doctor", "-o", "yaml"},
		{"doctor", "--kubelet.url=http://10.0.0.5:10250"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), append(args, "--no-agent.inherit-flags"), nil, &stdout, &stderr); code != 2 {
			t.Errorf("%q: exit code %d, want 2 (stderr %q)", args, code, stderr.String())
		}
	}
	var stdout bytes.Buffer
	if code := run(context.Background(), []string{"doctor", "why", "--help"}, nil, &stdout, &bytes.Buffer{}); code != 0 || !strings.Contains(stdout.String(), "kubectl-top") {
		t.Errorf("doctor why --help: %d %q", code, stdout.String())
	}
}

// TestDoctorSharesServeFlags: doctor reads the serve command's --path.*,
// --kubelet.* and --kubeconfig, and derives the agent's URL from its
// --web.* flags.
func TestDoctorSharesServeFlags(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	mtls := writeFile(t, dir, "mtls.yml", []byte("tls_server_config:\n  cert_file: a.crt\n  key_file: a.key\n  client_ca_file: ca.crt\n  client_auth_type: RequireAndVerifyClientCert\n"))
	tlsOnly := writeFile(t, dir, "tls.yml", []byte("tls_server_config:\n  cert_file: a.crt\n  key_file: a.key\n"))
	for _, tc := range []struct {
		args            []string
		url, unreadable string
	}{
		{nil, "http://127.0.0.1:9812", ""},
		{[]string{"--web.kubernetes-auth"}, "https://127.0.0.1:9812", ""},
		{[]string{"--web.listen-address=10.0.0.5:9999"}, "http://10.0.0.5:9999", ""},
		{[]string{"--web.listen-address=[::]:9812"}, "http://[::1]:9812", ""},
		{[]string{"--web.listen-address=0.0.0.0:9000"}, "http://127.0.0.1:9000", ""},
		{[]string{"--web.config.file=" + tlsOnly}, "https://127.0.0.1:9812", ""},
		{[]string{"--web.config.file=" + mtls}, "https://127.0.0.1:9812", "requires client certificates"},
		{[]string{"--web.config.file=testdata/web-config/basic-auth-only.good.yml"}, "http://127.0.0.1:9812", "requires basic auth"},
	} {
		c, code := parse(append([]string{"doctor", "--path.procfs=/host/proc", "--path.cgroupfs=/host/sys/fs/cgroup",
			"--kubelet.url=https://10.0.0.5:10250", "--kubeconfig=/etc/kubeconfig"}, tc.args...), &bytes.Buffer{}, &bytes.Buffer{})
		if c == nil {
			t.Fatalf("%q: exit %d", tc.args, code)
		}
		c.serve.getenv = func(string) string { return "" }
		o, err := c.doctorOptions()
		if err != nil {
			t.Fatal(err)
		}
		if o.ProcFS != "/host/proc" || o.CgroupFS != "/host/sys/fs/cgroup" || o.SysFS != "/sys" || o.Kubelet.URL != "https://10.0.0.5:10250" || o.KubeAPI.Kubeconfig != "/etc/kubeconfig" {
			t.Errorf("%q: the serve flags did not reach doctor: %+v", tc.args, o)
		}
		if o.Agent.URL != tc.url || !o.Agent.Derived || !strings.Contains(o.Agent.Unreadable, tc.unreadable) || (tc.unreadable == "") != (o.Agent.Unreadable == "") {
			t.Errorf("%q: agent %+v, want URL %s, unreadable %q", tc.args, o.Agent, tc.url, tc.unreadable)
		}
		// The pod's token goes to the agent only when it asks for tokens.
		if kubeAuth := c.serve.kubeAuth.Enabled; (o.Agent.TokenFile != "") != kubeAuth {
			t.Errorf("%q: agent token file %q with --web.kubernetes-auth %v", tc.args, o.Agent.TokenFile, kubeAuth)
		}
	}
}

// doctorEnv is the environment of a host without Kubernetes: no
// downward-API variables, no in-cluster API server.
func doctorEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "NODE_IP", "NODE_NAME", "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT":
			continue
		}
		env = append(env, kv)
	}
	return env
}

// runDoctorBinary runs the built binary's doctor and returns its output
// and exit code.
func runDoctorBinary(t *testing.T, bin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"doctor"}, args...)...)
	cmd.Env = doctorEnv()
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return out.String(), errOut.String(), code
}

// TestDoctorWithoutKubernetes runs the built binary on this machine as an
// operator would on a host without Kubernetes: the host checks run, every
// Kubernetes check is skipped with its reason, and the exit code is 0.
// The agent's address is a closed port, so that an agent someone runs on
// this machine's 9812 does not change the answer.
func TestDoctorWithoutKubernetes(t *testing.T) {
	t.Parallel()
	bin := buildBinary(t)
	closed := "127.0.0.1:" + strconv.Itoa(fakekubelet.ClosedPort(t))
	stdout, stderr, code := runDoctorBinary(t, bin, "-o", "json", "--web.listen-address="+closed)
	var doc doctorJSON
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil {
		t.Fatalf("%v\nstdout %s\nstderr %s", err, stdout, stderr)
	}
	if code != 0 || doc.Summary.ExitCode != 0 || doc.Summary.Fail != 0 {
		t.Errorf("exit code %d (summary %+v), want 0 and no failure\n%s", code, doc.Summary, stdout)
	}
	byID := doc.byID()
	host := 0
	for _, c := range doc.Checks {
		if c.Layer == "host" {
			host++
			if c.Verdict != "ok" && c.Verdict != "warn" {
				t.Errorf("%s: %s %q, want it run (ok or warn)", c.ID, c.Verdict, c.Detail)
			}
		}
	}
	if host != 6 {
		t.Errorf("%d host checks, want 6", host)
	}
	reasons := map[string]string{
		"kubelet.reachable":          "neither NODE_IP nor NODE_NAME is set",
		"kubelet.rbac.pods":          "the kubelet layer is off: see kubelet.reachable",
		"kubelet.readonly-port":      "the kubelet layer is off",
		"api.access":                 "no --kubeconfig given and not running in a Kubernetes pod",
		"metrics-server.apiservice":  "no API access: see api.access",
		"metrics-server.node":        "no API access: see api.access",
		"kube-state-metrics.present": "no API access: see api.access",
		"metrics-adapters.custom":    "no API access: see api.access",
		"prometheus.scraped":         "no agent listens at http://" + closed,
		"prometheus.targets":         "no --prometheus.url",
	}
	for id, reason := range reasons {
		if c := byID[id]; c.Verdict != "skipped" || !strings.Contains(c.Detail, reason) {
			t.Errorf("%s: %s %q, want skipped with %q", id, c.Verdict, c.Detail, reason)
		}
	}
	if doc.FlagsFrom != "" {
		t.Errorf("flags_from %q: no agent of this binary runs", doc.FlagsFrom)
	}
	t.Logf("%d checks: %+v", len(doc.Checks), doc.Summary)

	table, _, code := runDoctorBinary(t, bin, "--web.listen-address="+closed)
	if code != 0 || !strings.Contains(table, "VERDICT  CHECK") || !strings.Contains(table, "summary: ") {
		t.Errorf("table output, exit %d:\n%s", code, table)
	}
	t.Logf("as an operator sees it:\n%s", table)
}

// TestDoctorInheritsAgentFlags: run beside a running agent of the same
// executable (as kubectl exec into its pod does), doctor takes the
// agent's flags: here its fixture --path.procfs, which is no host procfs.
func TestDoctorInheritsAgentFlags(t *testing.T) {
	t.Parallel()
	bin := buildBinary(t)
	startBinary(t, bin, fixtureArgs...)
	stdout, stderr, _ := runDoctorBinary(t, bin, "-o", "json")
	var doc doctorJSON
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil {
		t.Fatalf("%v\nstdout %s\nstderr %s", err, stdout, stderr)
	}
	if !strings.HasPrefix(doc.FlagsFrom, "pid ") {
		t.Errorf("flags_from %q, want the agent's pid", doc.FlagsFrom)
	}
	if c := doc.byID()["host.procfs"]; !strings.Contains(c.Detail, filepath.Join("internal", "collectortest", "testdata", "host", "proc")) {
		t.Errorf("host.procfs %q: want the agent's --path.procfs", c.Detail)
	}
	stdout, _, _ = runDoctorBinary(t, bin, "-o", "json", "--no-agent.inherit-flags")
	doc = doctorJSON{}
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil {
		t.Fatal(err)
	}
	if c := doc.byID()["host.procfs"]; doc.FlagsFrom != "" || !strings.HasPrefix(c.Detail, "/proc ") {
		t.Errorf("with --no-agent.inherit-flags: flags_from %q, host.procfs %q; want /proc", doc.FlagsFrom, c.Detail)
	}
}

// doctorInProcess runs doctor -o json with args in this process.
func doctorInProcess(t *testing.T, args ...string) doctorJSON {
	t.Helper()
	var out, errOut bytes.Buffer
	run(context.Background(), append([]string{"doctor", "--no-agent.inherit-flags", "--check-timeout=2s", "-o", "json"}, args...), nil, &out, &errOut)
	var doc doctorJSON
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
		t.Fatalf("%v\n%s\n%s", err, out.String(), errOut.String())
	}
	return doc
}

// TestDoctorReadsRunningAgent: doctor reads the real agent's
// nodeagent_last_scrape_timestamp_seconds, in plain HTTP and behind
// --web.kubernetes-auth (self-signed TLS on loopback, the pod's token).
func TestDoctorReadsRunningAgent(t *testing.T) {
	t.Parallel()
	scraped := func(t *testing.T, doc doctorJSON, verdict, detail string) {
		t.Helper()
		if c := doc.byID()["prometheus.scraped"]; c.Verdict != verdict || !strings.Contains(c.Detail+" "+c.Fix, detail) {
			t.Errorf("prometheus.scraped: %s %q (fix %q), want %s with %q", c.Verdict, c.Detail, c.Fix, verdict, detail)
		}
	}
	t.Run("plain HTTP", func(t *testing.T) {
		t.Parallel()
		base := "http://" + startAgent(t)
		scraped(t, doctorInProcess(t, "--agent.url="+base), "fail", "nobody has scraped the agent")
		if code, _ := get(t, http.DefaultClient, base+"/metrics/node"); code != http.StatusOK {
			t.Fatalf("scrape: %d", code)
		}
		scraped(t, doctorInProcess(t, "--agent.url="+base), "ok", "/metrics/node ")
	})
	t.Run("Kubernetes auth", func(t *testing.T) {
		t.Parallel()
		api := newAuthAPI(t)
		const doctorUser = "system:serviceaccount:nodeagent:nodeagent"
		api.AddToken("doctor-token", fakeapiserver.User{Name: doctorUser})
		api.Allow(doctorUser, "/metrics/nodeagent") // the nodeagent-doctor ClusterRole's rule
		_, addr, _ := runAgent(t, "--web.kubernetes-auth", "--kubeconfig="+api.Kubeconfig)
		base := "https://" + addr
		if resp, _ := do(t, skipVerify(), base+"/metrics/cadvisor", scraperToken); resp.StatusCode != http.StatusOK {
			t.Fatalf("scrape: %d", resp.StatusCode)
		}
		dir := t.TempDir()
		scraped(t, doctorInProcess(t, "--agent.url="+base, "--agent.token-file="+writeFile(t, dir, "token", []byte("doctor-token"))), "ok", "/metrics/cadvisor ")
		scraped(t, doctorInProcess(t, "--agent.url="+base, "--agent.token-file="+writeFile(t, dir, "nobody", []byte(nobodyToken))), "warn", "nodeagent-doctor ClusterRole")
		scraped(t, doctorInProcess(t, "--agent.url="+base, "--agent.token-file="), "warn", "wants a bearer token")
	})
}

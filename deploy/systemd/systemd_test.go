// Package systemd holds the tests of nodeagent's systemd units: that the
// sandbox of nodeagent.service lets through every system call the agent
// makes (TestUnitSyscalls), that systemd accepts the units
// (TestUnitsVerify), that the sandbox is no weaker than it was
// (TestUnitSecurity), and that the socket-activated service is the same
// service (TestSocketServiceMatches) and serves on the socket it is
// passed (TestSocketActivation).
//
// make unit-syscalls runs them; they need strace and systemd-analyze
// (Debian's strace and systemd packages, which .ci/run installs) and no
// running systemd. Without NODEAGENT_REQUIRE_TOOLS=1 a missing tool skips
// them.
package systemd

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func need(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	msg := name + " not found (.ci/run installs it)"
	if os.Getenv("NODEAGENT_REQUIRE_TOOLS") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// setting is one Key=value line of a unit file, in file order.
type setting struct {
	section, key, value string
}

func readUnit(t *testing.T, name string) []setting {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	var out []setting
	section := ""
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "["):
			section = strings.Trim(line, "[]")
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				t.Fatalf("%s: line %q", name, line)
			}
			out = append(out, setting{section, k, v})
		}
	}
	return out
}

func values(unit []setting, key string) []string {
	var v []string
	for _, s := range unit {
		if s.key == key {
			v = append(v, s.value)
		}
	}
	return v
}

// syscallGroups parses `systemd-analyze syscall-filter`: each @group with
// its members, which may be other groups.
func syscallGroups(t *testing.T) map[string][]string {
	t.Helper()
	out, err := exec.Command(need(t, "systemd-analyze"), "syscall-filter", "--no-pager").Output()
	if err != nil {
		t.Fatalf("systemd-analyze syscall-filter: %v", err)
	}
	groups := map[string][]string{}
	group := ""
	for _, line := range strings.Split(string(out), "\n") {
		switch {
		case strings.HasPrefix(line, "@"):
			group = strings.TrimSpace(line)
			groups[group] = nil
		case strings.HasPrefix(line, "    ") && group != "":
			item := strings.TrimSpace(line)
			if item != "" && !strings.HasPrefix(item, "#") {
				groups[group] = append(groups[group], item)
			}
		case strings.TrimSpace(line) == "":
		default:
			group = "" // the "# Unlisted system calls" part and the like
		}
	}
	if len(groups["@system-service"]) == 0 || len(groups["@default"]) == 0 {
		t.Fatalf("systemd-analyze syscall-filter listed no @system-service or @default:\n%s", out)
	}
	return groups
}

func expand(groups map[string][]string, item string, into map[string]bool) {
	if !strings.HasPrefix(item, "@") {
		into[item] = true
		return
	}
	for _, m := range groups[item] {
		expand(groups, m, into)
	}
}

// syscallFilter is the effect of a unit's SystemCallFilter= lines, read
// as systemd reads them: the first non-empty line makes an allow list
// (which starts with @default) or, with ~, a deny list; later lines add to
// or take from it; an empty one resets.
type syscallFilter struct {
	allowList bool
	set       map[string]bool // allowed (allow list) or denied (deny list)
}

func newSyscallFilter(t *testing.T, groups map[string][]string, lines []string) syscallFilter {
	t.Helper()
	var f syscallFilter
	for _, line := range lines {
		if strings.TrimSpace(line) == "" {
			f = syscallFilter{}
			continue
		}
		invert := strings.HasPrefix(line, "~")
		line = strings.TrimPrefix(line, "~")
		if f.set == nil {
			f.set = map[string]bool{}
			f.allowList = !invert
			if f.allowList {
				expand(groups, "@default", f.set)
			}
		}
		for _, item := range strings.Fields(line) {
			if strings.HasPrefix(item, "@") {
				if _, ok := groups[item]; !ok {
					t.Fatalf("SystemCallFilter= names unknown group %s", item)
				}
			}
			m := map[string]bool{}
			expand(groups, item, m)
			for s := range m {
				// Allow list: ~ removes. Deny list: ~ adds, a plain
				// entry removes.
				if invert == f.allowList {
					delete(f.set, s)
				} else {
					f.set[s] = true
				}
			}
		}
	}
	if f.set == nil {
		t.Fatal("the unit has no SystemCallFilter=")
	}
	return f
}

func (f syscallFilter) allows(name string) bool {
	return f.set[name] == f.allowList
}

// TestSyscallFilterSemantics checks the reading of SystemCallFilter= lines
// on small cases, against systemd's documented rules.
func TestSyscallFilterSemantics(t *testing.T) {
	groups := syscallGroups(t)
	tests := []struct {
		name    string
		lines   []string
		allowed []string
		denied  []string
	}{
		{"allow list has @default", []string{"read"}, []string{"read", "futex", "exit_group"}, []string{"write", "adjtimex"}},
		{"deny after allow", []string{"@system-service", "~@privileged @resources"}, []string{"read", "statfs", "ioctl"}, []string{"adjtimex", "setuid", "setrlimit", "capset"}},
		{"allow after deny", []string{"@system-service", "~@privileged @resources", "adjtimex"}, []string{"adjtimex"}, []string{"clock_settime", "setuid"}},
		{"deny list", []string{"~@clock"}, []string{"read", "mount"}, []string{"adjtimex"}},
		{"deny list, then allow one", []string{"~@clock", "adjtimex"}, []string{"adjtimex"}, []string{"settimeofday"}},
		{"reset", []string{"~@clock", "", "read"}, []string{"read"}, []string{"mount"}},
	}
	compared := 0
	for _, tc := range tests {
		f := newSyscallFilter(t, groups, tc.lines)
		for _, s := range tc.allowed {
			if !f.allows(s) {
				t.Errorf("%s: %s denied, want allowed", tc.name, s)
			}
			compared++
		}
		for _, s := range tc.denied {
			if f.allows(s) {
				t.Errorf("%s: %s allowed, want denied", tc.name, s)
			}
			compared++
		}
	}
	t.Logf("%d system calls compared", compared)
}

// execArgs is the unit's ExecStart= with the installed paths replaced by
// the built binary and the repository's web config, and the environment
// variables (empty in the packages' environment file) left out.
func execArgs(t *testing.T, unit []setting, bin string) []string {
	t.Helper()
	execs := values(unit, "ExecStart")
	if len(execs) != 1 {
		t.Fatalf("ExecStart= %q, want one", execs)
	}
	fields := strings.Fields(execs[0])
	if fields[0] != "/usr/bin/nodeagent" {
		t.Fatalf("ExecStart= runs %s, want /usr/bin/nodeagent (the packages' path)", fields[0])
	}
	args := []string{bin}
	for _, a := range fields[1:] {
		switch {
		case strings.HasPrefix(a, "$"):
		case a == "--web.config.file=/etc/nodeagent/web-config.yml":
			args = append(args, "--web.config.file=web-config.yml")
		default:
			args = append(args, a)
		}
	}
	return args
}

func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "nodeagent")
	cmd := exec.Command("go", "build", "-trimpath", "-o", bin, "../../cmd/nodeagent")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	// The temporary directories are 0700; the unprivileged user that runs
	// the binary must reach it.
	for _, d := range []string{filepath.Dir(bin), filepath.Dir(filepath.Dir(bin))} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return bin
}

var (
	callRE     = regexp.MustCompile(`^\d+ +([a-z0-9_]+)\(`)
	resumedRE  = regexp.MustCompile(`^\d+ +<\.\.\. ([a-z0-9_]+) resumed>`)
	socketRE   = regexp.MustCompile(`^\d+ +socket\((AF_[A-Z0-9]+)`)
	listenRE   = regexp.MustCompile(`msg="Listening on" address=(\S+)`)
	deniedErrs = regexp.MustCompile(`= -1 EPERM|SIGSYS`)
)

// TestUnitSyscalls runs the built binary under strace as nodeagent.service
// runs it on a bare-metal host (its flags, its GOMEMLIMIT, an unprivileged
// user, no kubelet), scrapes every path it serves a few times, stops it
// with SIGTERM, and checks that every system call it made is allowed by
// the unit's SystemCallFilter= and every socket it opened by
// RestrictAddressFamilies=. A collector that starts to use a call the
// filter denies makes this fail.
func TestUnitSyscalls(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and traces the binary: make unit-syscalls")
	}
	strace := need(t, "strace")
	groups := syscallGroups(t)
	unit := readUnit(t, "nodeagent.service")
	filter := newSyscallFilter(t, groups, values(unit, "SystemCallFilter"))
	bin := buildBinary(t)

	args := append(execArgs(t, unit, bin), "--web.listen-address=127.0.0.1:0")
	// On a host whose /sys/fs/cgroup is v1 or hybrid, read its cgroup v2
	// hierarchy, as docs/bare-metal.md tells such hosts to, so that the
	// container layer's calls are traced too.
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err != nil {
		if _, err := os.Stat("/sys/fs/cgroup/unified/cgroup.controllers"); err == nil {
			args = append(args, "--path.cgroupfs=/sys/fs/cgroup/unified")
		}
	}
	trace := filepath.Join(t.TempDir(), "strace.out")
	straceArgs := []string{"-f", "-qq", "-e", "trace=all", "-o", trace}
	if os.Geteuid() == 0 {
		// The unit's User=: no privilege, as the service has none.
		straceArgs = append(straceArgs, "-u", "nobody")
	}
	cmd := exec.Command(strace, append(straceArgs, args...)...)
	cmd.Env = append([]string{"PATH=/usr/bin:/bin"}, values(unit, "Environment")...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	var logsMu sync.Mutex
	addr := make(chan string, 1)
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logsMu.Lock()
			logs.WriteString(sc.Text() + "\n")
			logsMu.Unlock()
			if m := listenRE.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
	}()
	stopped := false
	defer func() {
		if !stopped {
			_ = cmd.Process.Kill()
			<-scanned
			_ = cmd.Wait()
		}
		if t.Failed() {
			logsMu.Lock()
			t.Logf("nodeagent log:\n%s", logs.String())
			logsMu.Unlock()
		}
	}()
	var base string
	select {
	case a := <-addr:
		base = "http://" + a
	case <-time.After(2 * time.Minute):
		t.Fatal("nodeagent did not start listening")
	}

	paths := []string{"/", "/metrics", "/metrics/node", "/metrics/cadvisor", "/metrics/nodeagent",
		"/metrics/kubelet", "/metrics/probes", "/metrics/resource", "/healthz", "/readyz"}
	scrapes := 0
	var failed []string
	for round := 0; round < 3; round++ {
		for _, p := range paths {
			// Prometheus asks for gzip; the first round also without.
			body, code := get(t, base+p, round > 0)
			scrapes++
			if p == "/metrics" && round == 2 {
				failed = failedCollectors(body)
			}
			if code >= 500 {
				t.Errorf("%s: HTTP %d", p, code)
			}
		}
	}

	// SIGTERM to nodeagent (strace's child), as systemd stops it.
	pid := tracee(t, cmd.Process.Pid)
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-scanned
	// strace exits as its tracee did (-qq leaves the "+++ exited" lines
	// out): 0 for a graceful stop, 128+31 for a kill by SIGSYS.
	if err := cmd.Wait(); err != nil {
		t.Errorf("nodeagent under strace did not exit cleanly on SIGTERM: %v", err)
	}
	stopped = true

	seen, families := readTrace(t, trace)
	var names, denied []string
	for name := range seen {
		names = append(names, name)
		if !filter.allows(name) {
			denied = append(denied, name)
		}
	}
	sort.Strings(names)
	sort.Strings(denied)
	if len(names) < 20 {
		t.Fatalf("only %d distinct system calls traced: %v", len(names), names)
	}
	var list []string
	for _, n := range names {
		list = append(list, fmt.Sprintf("%s %d", n, seen[n]))
	}
	t.Logf("%d scrapes; %d distinct system calls, each checked against SystemCallFilter=:\n%s", scrapes, len(names), strings.Join(list, "\n"))
	if len(denied) > 0 {
		t.Errorf("nodeagent.service's SystemCallFilter= denies %v, which the agent called (allow them in the unit, naming the collector that needs them)", denied)
	}
	// The same trace against the filter as it was before adjtimex was
	// allowed: the check must find the timex collector's call.
	var old []string
	for _, v := range values(unit, "SystemCallFilter") {
		if v != "adjtimex" {
			old = append(old, v)
		}
	}
	if oldFilter := newSyscallFilter(t, groups, old); seen["adjtimex"] == 0 || oldFilter.allows("adjtimex") {
		t.Errorf("the trace (adjtimex called %d times) is not caught by the filter without adjtimex", seen["adjtimex"])
	}

	allowedFamilies := map[string]bool{}
	for _, v := range values(unit, "RestrictAddressFamilies") {
		for _, f := range strings.Fields(v) {
			allowedFamilies[f] = true
		}
	}
	var fams []string
	for f := range families {
		fams = append(fams, f)
		if !allowedFamilies[f] {
			t.Errorf("socket(%s, ...) called, but RestrictAddressFamilies= does not allow it", f)
		}
	}
	sort.Strings(fams)
	t.Logf("socket families: %v", fams)
	if len(fams) == 0 {
		t.Error("no socket traced: the trace is incomplete")
	}
	if len(failed) > 0 {
		t.Logf("collectors failing on this host (unprivileged, as the unit runs): %v", failed)
	}
	logsMu.Lock()
	defer logsMu.Unlock()
	for _, line := range strings.Split(logs.String(), "\n") {
		if deniedErrs.MatchString(line) || strings.Contains(line, "operation not permitted") {
			t.Errorf("nodeagent logged a refused operation: %s", line)
		}
	}
}

func get(t *testing.T, url string, gz bool) (string, int) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if gz {
		req.Header.Set("Accept-Encoding", "gzip")
	}
	req.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", "10")
	resp, err := (&http.Transport{DisableCompression: true, ResponseHeaderTimeout: 30 * time.Second}).RoundTrip(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	var r io.Reader = resp.Body
	if resp.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(resp.Body)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		r = zr
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return string(b), resp.StatusCode
}

var collectorFailedRE = regexp.MustCompile(`(?m)^nodeagent_scrape_collector_success\{collector="([^"]+)"\} 0$`)

func failedCollectors(body string) []string {
	var out []string
	for _, m := range collectorFailedRE.FindAllStringSubmatch(body, -1) {
		out = append(out, m[1])
	}
	return out
}

// tracee is the PID of strace's child, the traced nodeagent.
func tracee(t *testing.T, stracePID int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", stracePID, stracePID))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b))
	if len(f) != 1 {
		t.Fatalf("strace has children %q, want one", f)
	}
	pid, err := strconv.Atoi(f[0])
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// readTrace returns the system calls in an strace -f output with their
// counts, and the address families of the sockets opened.
func readTrace(t *testing.T, name string) (map[string]int, map[string]bool) {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	seen := map[string]int{}
	families := map[string]bool{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if m := callRE.FindStringSubmatch(line); m != nil {
			seen[m[1]]++
		} else if m := resumedRE.FindStringSubmatch(line); m != nil {
			seen[m[1]]++
		}
		if m := socketRE.FindStringSubmatch(line); m != nil {
			families[m[1]] = true
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	// A call split by -f into "unfinished" and "resumed" is counted twice
	// above; the counts are for reading, the set is what is checked.
	return seen, families
}

// scratchSystem is a root for systemd-analyze --root: the host's unit
// directory (for the targets the units name), the units, and a binary at
// /usr/bin/nodeagent.
func scratchSystem(t *testing.T, bin string) string {
	t.Helper()
	root := t.TempDir()
	unitDir := filepath.Join(root, "usr/lib/systemd/system")
	if err := os.MkdirAll(unitDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "usr/bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	hostUnits, _ := filepath.Glob("/lib/systemd/system/*.target")
	if len(hostUnits) == 0 {
		hostUnits, _ = filepath.Glob("/usr/lib/systemd/system/*.target")
	}
	for _, u := range append(hostUnits, "nodeagent.service", "nodeagent.socket", "nodeagent-socket.service") {
		copyFile(t, u, filepath.Join(unitDir, filepath.Base(u)), 0o644)
	}
	copyFile(t, bin, filepath.Join(root, "usr/bin/nodeagent"), 0o755)
	return root
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, mode); err != nil {
		t.Fatal(err)
	}
}

// TestUnitsVerify: systemd-analyze verify, with no systemd running, finds
// nothing to say about the three units installed in a scratch root (it
// warns on unknown keys, unknown system calls, a missing binary, and exits
// 0 all the same, so any output fails the test).
func TestUnitsVerify(t *testing.T) {
	analyze := need(t, "systemd-analyze")
	// verify only checks that ExecStart= is executable: any file will do.
	bin := filepath.Join(t.TempDir(), "nodeagent")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	root := scratchSystem(t, bin)
	units := []string{"nodeagent.service", "nodeagent.socket", "nodeagent-socket.service"}
	args := []string{"verify", "--man=no", "--root=" + root}
	for _, u := range units {
		args = append(args, filepath.Join(root, "usr/lib/systemd/system", u))
	}
	out, err := exec.Command(analyze, args...).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	t.Logf("%d units verified", len(units))

	// The check can fail: a unit with a mistake is reported.
	bad := filepath.Join(root, "usr/lib/systemd/system/nodeagent-bad.service")
	b, err := os.ReadFile("nodeagent.service")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, bytes.Replace(b, []byte("SystemCallFilter=adjtimex"), []byte("SystemCallFilter=adjtimexx"), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, _ := exec.Command(analyze, "verify", "--man=no", "--root="+root, bad).CombinedOutput(); len(bytes.TrimSpace(out)) == 0 {
		t.Error("systemd-analyze verify said nothing about an unknown system call")
	}
}

// securityBaseline is `systemd-analyze security` of nodeagent.service
// before the unit allowed adjtimex (and so gave up ProtectClock=): the
// unit may not become more exposed than this.
const securityBaseline = 1.9

var exposureRE = regexp.MustCompile(`Overall exposure level for \S+: (\d+\.\d+)`)

// TestUnitSecurity scores both services with systemd-analyze security
// --offline=true (no running systemd needed).
func TestUnitSecurity(t *testing.T) {
	analyze := need(t, "systemd-analyze")
	for _, u := range []string{"nodeagent.service", "nodeagent-socket.service"} {
		out, _ := exec.Command(analyze, "security", "--offline=true", "--no-pager", u).CombinedOutput()
		m := exposureRE.FindSubmatch(out)
		if m == nil {
			t.Fatalf("systemd-analyze security %s:\n%s", u, out)
		}
		score, err := strconv.ParseFloat(string(m[1]), 64)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: exposure %.1f (baseline %.1f)", u, score, securityBaseline)
		if score > securityBaseline {
			t.Errorf("%s: exposure %.1f, above the baseline %.1f:\n%s", u, score, securityBaseline, out)
		}
	}
}

// TestSocketServiceMatches: nodeagent-socket.service is nodeagent.service
// but for what socket activation changes, so the two sandboxes cannot
// drift apart; and nodeagent.socket starts it on the default port.
func TestSocketServiceMatches(t *testing.T) {
	plain := readUnit(t, "nodeagent.service")
	socket := readUnit(t, "nodeagent-socket.service")
	differ := map[string]bool{"Description": true, "Conflicts": true, "Requires": true, "After": true,
		"ExecStart": true, "WantedBy": true, "Also": true}
	strip := func(u []setting) []setting {
		var out []setting
		for _, s := range u {
			if !differ[s.key] {
				out = append(out, s)
			}
		}
		return out
	}
	if diff := cmp.Diff(strip(plain), strip(socket), cmp.AllowUnexported(setting{})); diff != "" {
		t.Errorf("nodeagent-socket.service differs from nodeagent.service (-plain +socket):\n%s", diff)
	}
	t.Logf("%d settings compared", len(strip(plain)))
	want := strings.Replace(values(plain, "ExecStart")[0], "/usr/bin/nodeagent ", "/usr/bin/nodeagent --web.systemd-socket ", 1)
	if got := values(socket, "ExecStart"); len(got) != 1 || got[0] != want {
		t.Errorf("socket service ExecStart=%q, want %q", got, want)
	}
	if got := values(socket, "Requires"); !cmp.Equal(got, []string{"nodeagent.socket"}) {
		t.Errorf("socket service Requires=%q, want nodeagent.socket", got)
	}
	sock := readUnit(t, "nodeagent.socket")
	if got := values(sock, "ListenStream"); !cmp.Equal(got, []string{"9812"}) {
		t.Errorf("ListenStream=%q, want 9812 (docs/ports.md)", got)
	}
	if got := values(sock, "Service"); !cmp.Equal(got, []string{"nodeagent-socket.service"}) {
		t.Errorf("Service=%q, want nodeagent-socket.service", got)
	}
}

// TestSocketActivation runs nodeagent-socket.service's command line with a
// listening socket passed as systemd passes it for nodeagent.socket (file
// descriptor 3, LISTEN_FDS=1, LISTEN_PID of the process), and scrapes
// through it.
func TestSocketActivation(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary: make unit-syscalls")
	}
	sh := need(t, "sh")
	unit := readUnit(t, "nodeagent-socket.service")
	bin := buildBinary(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lf, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	ln.Close() // the duplicate in lf stays open
	// exec keeps the shell's PID, which is what LISTEN_PID must name.
	cmd := exec.Command(sh, append([]string{"-c", `LISTEN_PID=$$ LISTEN_FDS=1 exec "$@"`, "sh"}, execArgs(t, unit, bin)...)...)
	cmd.ExtraFiles = []*os.File{lf}
	var out bytes.Buffer
	var outMu sync.Mutex
	cmd.Stdout, cmd.Stderr = lockedWriter{&out, &outMu}, lockedWriter{&out, &outMu}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lf.Close()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		if err := cmd.Wait(); err != nil {
			t.Errorf("nodeagent did not exit cleanly on SIGTERM: %v", err)
		}
		if t.Failed() {
			outMu.Lock()
			t.Logf("nodeagent:\n%s", out.String())
			outMu.Unlock()
		}
	}()
	base := "http://" + ln.Addr().String()
	body, code := get(t, base+"/metrics/node", true)
	if code != http.StatusOK || !strings.Contains(body, "node_load1 ") {
		t.Errorf("GET /metrics/node through the passed socket: HTTP %d, %d bytes without node_load1", code, len(body))
	}
	if _, code := get(t, base+"/healthz", false); code != http.StatusOK {
		t.Errorf("GET /healthz: HTTP %d", code)
	}
	outMu.Lock()
	defer outMu.Unlock()
	if !strings.Contains(out.String(), "Listening on systemd activated listeners") {
		t.Errorf("nodeagent did not say it uses the passed socket:\n%s", out.String())
	}
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

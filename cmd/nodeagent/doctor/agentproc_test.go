package doctor

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"slices"
	"testing"
)

// TestHelperProcess is not a test: FindAgent's test runs this test binary
// as stand-ins for running nodeagent processes, which wait here until
// their standard input closes.
func TestHelperProcess(t *testing.T) {
	if os.Getenv("DOCTOR_TEST_HELPER") != "1" {
		t.Skip("a helper process for TestFindAgent")
	}
	_, _ = io.Copy(io.Discard, os.Stdin)
	os.Exit(0)
}

// startHelper runs this test binary with args, as a process of the same
// executable as the test.
func startHelper(t *testing.T, args ...string) int {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, append([]string{"-test.run=^TestHelperProcess$", "--"}, args...)...)
	cmd.Env = append(os.Environ(), "DOCTOR_TEST_HELPER=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = stdin.Close()
		_ = cmd.Wait()
	})
	return cmd.Process.Pid
}

// TestFindAgent: the agent is the process of the same executable that
// serves; a doctor run of it is not; two agents are ambiguous.
func TestFindAgent(t *testing.T) {
	if _, err := FindAgent("/proc"); !errors.Is(err, ErrNoAgentProcess) {
		t.Fatalf("before any helper: %v, want ErrNoAgentProcess", err)
	}
	startHelper(t, "doctor", "--path.procfs=/elsewhere")
	pid := startHelper(t, "serve", "--path.procfs=/host/proc", "--kubelet.url=https://10.0.0.5:10250")
	a, err := FindAgent("/proc")
	if err != nil {
		t.Fatal(err)
	}
	if a.PID != pid {
		t.Errorf("found pid %d, want %d", a.PID, pid)
	}
	flags := a.Flags()
	if !slices.Contains(flags, "--path.procfs=/host/proc") || !slices.Contains(flags, "--kubelet.url=https://10.0.0.5:10250") || slices.Contains(flags, "serve") {
		t.Errorf("flags %q: want the agent's --path.procfs and --kubelet.url, without serve", flags)
	}
	startHelper(t, "--path.procfs=/other")
	if _, err := FindAgent("/proc"); err == nil || errors.Is(err, ErrNoAgentProcess) {
		t.Errorf("two agents: %v, want an error naming both", err)
	}
}

package doctor

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Agent is a running "nodeagent serve" process.
type Agent struct {
	PID  int
	Args []string // its arguments, without the program name
}

// ErrNoAgentProcess says no running agent was found.
var ErrNoAgentProcess = errors.New("no running nodeagent serve process of this executable is visible")

// FindAgent looks among the processes in proc (this process's own procfs)
// for the agent: a process running the same executable file as this one
// (the same file, not the same name: in the DaemonSet pod the agent and a
// "kubectl exec … nodeagent doctor" share the container's binary; on a
// host, the installed one) that serves, rather than running doctor or
// check-metrics. Processes whose executable this process may not read
// (another user's, without root) are not considered.
//
// Why: "kubectl exec ds/nodeagent -- nodeagent doctor" starts a process
// without the agent's arguments, whose defaults (/proc, /sys, / of the
// container) are not what the agent reads.
func FindAgent(proc string) (*Agent, error) {
	self, err := os.Stat(filepath.Join(proc, "self/exe"))
	if err != nil {
		return nil, fmt.Errorf("%s/self/exe: %w", proc, err)
	}
	selfPID, _ := os.Readlink(filepath.Join(proc, "self"))
	entries, err := os.ReadDir(proc)
	if err != nil {
		return nil, err
	}
	var found []*Agent
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || e.Name() == selfPID {
			continue
		}
		exe, err := os.Stat(filepath.Join(proc, e.Name(), "exe"))
		if err != nil || !os.SameFile(self, exe) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(proc, e.Name(), "cmdline"))
		if err != nil || len(b) == 0 {
			continue
		}
		argv := strings.Split(string(bytes.TrimSuffix(b, []byte{0})), "\x00")
		args := argv[1:]
		if slices.Contains(args, "doctor") || slices.Contains(args, "check-metrics") {
			continue
		}
		found = append(found, &Agent{PID: pid, Args: args})
	}
	switch len(found) {
	case 0:
		return nil, ErrNoAgentProcess
	case 1:
		return found[0], nil
	}
	var pids []string
	for _, a := range found {
		pids = append(pids, strconv.Itoa(a.PID))
	}
	return nil, fmt.Errorf("several nodeagent serve processes (pids %s): give doctor the flags of the one to check", strings.Join(pids, ", "))
}

// Flags are the agent's arguments as doctor takes them: every flag, the
// serve subcommand's name left out.
func (a *Agent) Flags() []string {
	var out []string
	for _, arg := range a.Args {
		if arg != "serve" {
			out = append(out, arg)
		}
	}
	return out
}

// Package doctor answers, from the node it runs on, which layer of the
// metrics stack is silent and why: the host's filesystems, the container
// cgroups, the kubelet, the cluster's metrics layers behind the API server
// (metrics-server, kube-state-metrics, metrics adapters) and Prometheus.
//
// Each check has a verdict (ok, warn, fail, skipped), a one-line detail and
// a one-line fix. Checks run concurrently, each under its own deadline and
// all under a global one, so that a run answers within seconds even when
// every server is down; what several checks need (the kubelet's /pods, the
// cgroup walk, the API server's answers) is fetched once and shared.
//
// Only cmd/nodeagent uses it: the "nodeagent doctor" subcommand.
package doctor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/common/version"

	"github.com/nodeagent/nodeagent/internal/kubeapi"
	"github.com/nodeagent/nodeagent/kubeletclient"
)

// Verdict is a check's outcome.
type Verdict string

// The verdicts, in the JSON output's spelling. Only Fail makes the exit
// code 1.
const (
	OK      Verdict = "ok"
	Warn    Verdict = "warn"
	Fail    Verdict = "fail"
	Skipped Verdict = "skipped"
)

// Layer is the part of the metrics stack a check looks at.
type Layer string

// The layers, bottom up.
const (
	LayerHost             Layer = "host"
	LayerContainers       Layer = "containers"
	LayerKubelet          Layer = "kubelet"
	LayerAPI              Layer = "api"
	LayerMetricsServer    Layer = "metrics-server"
	LayerKubeStateMetrics Layer = "kube-state-metrics"
	LayerMetricsAdapters  Layer = "metrics-adapters"
	LayerPrometheus       Layer = "prometheus"
)

// Result is one check's answer.
type Result struct {
	ID      string
	Layer   Layer
	Verdict Verdict
	// Detail says what the check found, on one line.
	Detail string
	// Fix says what to do, on one line; empty when there is nothing to do.
	Fix string
}

// Options are what the checks look at: the serve command's settings (paths,
// the kubelet, the API server), where the running agent and Prometheus are,
// and the deadlines.
type Options struct {
	// The host's filesystems as the agent reads them (--path.*).
	ProcFS, SysFS, RootFS, CgroupFS string
	// SelfProc is this process's own procfs, normally /proc: the running
	// kernel's boot ID and this process's namespaces come from it.
	SelfProc string

	// Kubelet is the agent's kubelet client configuration (--kubelet.*).
	Kubelet kubeletclient.Config
	// KubeAPI says how to reach the API server (--kubeconfig).
	KubeAPI kubeapi.Options
	// Getenv reads NODE_IP and NODE_NAME as the agent does.
	Getenv func(string) string
	// NodeName is this node's name in the cluster (Node object, the node
	// label of Prometheus targets).
	NodeName string

	Agent      AgentOptions
	Prometheus PrometheusOptions

	// Timeout bounds the whole run; CheckTimeout each check.
	Timeout, CheckTimeout time.Duration
	// Now is the clock (the age of the last scrape).
	Now func() time.Time

	// Symptom, when set, runs only the checks of that symptom's chain
	// (see Symptoms) and concludes with the first silent layer; Pod is
	// the namespace/name that pod-missing asks about.
	Symptom, Pod string
}

// AgentOptions say how to read the running agent's own metrics.
type AgentOptions struct {
	// URL is the agent's base URL (https://127.0.0.1:9812).
	URL string
	// Derived says URL was derived from the serve flags, not given: then
	// nothing listening there means "no agent here", not a failure.
	Derived bool
	// TokenFile is a bearer token sent over https (the pod's
	// service-account token under --web.kubernetes-auth); empty: none.
	TokenFile string
	// Unreadable, when set, says why doctor cannot read the agent at all
	// (it requires client certificates).
	Unreadable string
}

// PrometheusOptions say where Prometheus' HTTP API is.
type PrometheusOptions struct {
	// URL is Prometheus' base URL; empty: the checks that ask it are
	// skipped.
	URL string
}

// grace is how long the runner waits beyond a check's deadline for the
// check to say why it timed out, before it reports it unfinished.
const grace = 500 * time.Millisecond

// check is one check: its id, its layer and what it runs.
type check struct {
	id    string
	layer Layer
	run   func(ctx context.Context, d *doctor) outcome
}

// outcome is a check's verdict with its detail and fix.
type outcome struct {
	verdict     Verdict
	detail, fix string
}

func okf(format string, args ...any) outcome {
	return outcome{verdict: OK, detail: fmt.Sprintf(format, args...)}
}

func skipf(format string, args ...any) outcome {
	return outcome{verdict: Skipped, detail: fmt.Sprintf(format, args...)}
}

func warn(detail, fix string) outcome { return outcome{verdict: Warn, detail: detail, fix: fix} }
func fail(detail, fix string) outcome { return outcome{verdict: Fail, detail: detail, fix: fix} }

// doctor holds one run's options and the facts its checks share.
type doctor struct {
	opts Options

	// checkTimeout bounds each check and each shared fetch.
	checkTimeout time.Duration

	kubelet        *lazy[*kubeletclient.Client]
	kubeletPods    *lazy[podsResult]
	kubeletMetrics *lazy[struct{}]
	cgroups        *lazy[cgroupLayout]
	walk           *lazy[walkResult]
	api            *lazy[*apiConn]
	apiVersion     *lazy[string]
	apiIdentity    *lazy[string]
	kubeletID      *lazy[*apiConn]
	kubeletUser    *lazy[string]
	apiServices    map[string]*lazy[*apiService]
	ssar           map[string]*lazy[ssarAnswer]
	agent          *lazy[agentScrapes]
	promUp         *lazy[[]promTarget]
}

// Run runs every check, or with Options.Symptom that symptom's chain, and
// returns the report. It returns within Options.Timeout (plus a fraction of
// a second to assemble the report), whatever answers or hangs.
func Run(ctx context.Context, o Options) (*Report, error) {
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.SelfProc == "" {
		o.SelfProc = "/proc"
	}
	var sym *symptom
	if o.Symptom != "" {
		s, err := findSymptom(o.Symptom, o.Pod)
		if err != nil {
			return nil, err
		}
		sym = s
	}
	if o.Timeout <= 0 || o.CheckTimeout <= 0 {
		return nil, fmt.Errorf("%w: --timeout and --check-timeout must be positive", ErrUsage)
	}
	// Deadlines run on the wall clock; Now is the clock of what checks
	// report (the age of a scrape).
	start := time.Now()
	// The global deadline leaves the runner its grace to collect late
	// answers and still return within Timeout.
	budget := o.Timeout - grace
	if budget < o.Timeout/2 {
		budget = o.Timeout / 2
	}
	runCtx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	d := newDoctor(runCtx, o, min(o.CheckTimeout, budget))

	checks := allChecks()
	if sym != nil {
		checks = sym.checks()
	}
	results := d.runChecks(runCtx, checks, start.Add(o.Timeout))
	r := &Report{Node: o.NodeName, Checks: results, Version: version.Version, Duration: time.Since(start)}
	if sym != nil {
		r.Symptom = sym.conclude(results)
	}
	return r, nil
}

// runChecks runs checks concurrently and returns their results in the
// order given. A check still running at its deadline (plus grace) or at
// the global one is reported as unfinished: the runner never waits for a
// syscall that does not return.
func (d *doctor) runChecks(ctx context.Context, checks []check, end time.Time) []Result {
	results := make([]Result, len(checks))
	var wg sync.WaitGroup
	for i, c := range checks {
		wg.Go(func() {
			// A check waits for shared facts a little longer than they
			// take at most, so that their own explanation of a timeout
			// wins over a bare "deadline exceeded".
			cctx, cancel := context.WithTimeout(ctx, d.checkTimeout+grace/2)
			defer cancel()
			done := make(chan outcome, 1)
			go func() { done <- c.run(cctx, d) }()
			wait := min(time.Until(end), d.checkTimeout+grace)
			timer := time.NewTimer(wait)
			defer timer.Stop()
			var o outcome
			select {
			case o = <-done:
			case <-timer.C:
				o = fail(fmt.Sprintf("no answer within %s (a server that does not answer, or a filesystem that hangs)", wait.Round(time.Millisecond)),
					"run again with a longer --check-timeout and --timeout; if it persists, the detail of the other checks of this layer says which server or path hangs")
			}
			results[i] = Result{ID: c.id, Layer: c.layer, Verdict: o.verdict, Detail: oneLine(o.detail), Fix: oneLine(o.fix)}
		})
	}
	wg.Wait()
	return results
}

// explainTimeout says how long doctor waited when err is a deadline.
func (d *doctor) explainTimeout(err error) error {
	if errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "Client.Timeout exceeded") {
		return fmt.Errorf("no answer within %s (--check-timeout): %w", d.checkTimeout, err)
	}
	return err
}

// oneLine folds whitespace runs (a kubelet's message ends in a newline)
// into single spaces.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// lazy is a fact several checks need, fetched once, on first use, under
// the run's context and the check timeout; waiters give up at their own
// deadline.
type lazy[T any] struct {
	base    context.Context
	timeout time.Duration
	f       func(context.Context) (T, error)
	once    sync.Once
	done    chan struct{}
	v       T
	err     error
}

func newLazy[T any](base context.Context, timeout time.Duration, f func(context.Context) (T, error)) *lazy[T] {
	return &lazy[T]{base: base, timeout: timeout, f: f, done: make(chan struct{})}
}

// get returns the fact, fetching it if nobody has; it returns ctx's error
// when ctx ends first.
func (l *lazy[T]) get(ctx context.Context) (T, error) {
	l.once.Do(func() {
		go func() {
			defer close(l.done)
			fctx, cancel := context.WithTimeout(l.base, l.timeout)
			defer cancel()
			l.v, l.err = l.f(fctx)
		}()
	})
	select {
	case <-l.done:
		return l.v, l.err
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
}

package kubelet

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nodeagent/nodeagent/internal/refresh"

	"github.com/nodeagent/nodeagent/collectors"
)

func init() {
	collectors.Register(collectors.Registration{
		Name:           "kubelet_readonly_port",
		Layer:          collectors.LayerSecurity,
		DefaultEnabled: true,
		Setup: func(collectors.FlagApp) collectors.Factory {
			return func(env collectors.Env) (collectors.Collector, error) {
				if env.Kubelet == nil {
					return nil, nil // no kubelet on this host
				}
				return newReadOnlyPortCollector(env), nil
			}
		},
	})
	collectors.Register(collectors.Registration{
		Name:           "kubelet_anonymous_auth",
		Layer:          collectors.LayerSecurity,
		DefaultEnabled: true,
		Setup: func(collectors.FlagApp) collectors.Factory {
			return func(env collectors.Env) (collectors.Collector, error) {
				if env.Kubelet == nil {
					return nil, nil
				}
				return newAnonymousAuthCollector(env), nil
			}
		},
	})
}

// checkResult is one run of a security check.
type checkResult struct {
	bad bool      // the read-only port is open; anonymous requests are accepted
	err error     // the check could not tell; bad is then meaningless
	at  time.Time // when the check ran
}

// securityCheck runs one check of the kubelet's configuration at most once
// per --kubelet.security-check-interval: the first scrape (the agent's
// warm-up collection, before /readyz turns ready) waits for it, every later
// scrape serves the cached result at once while a due re-check runs behind
// it. Nothing runs between scrapes.
type securityCheck struct {
	value *refresh.Value[checkResult]
	// logChange logs a result whose state differs from the previous one.
	logChange func(checkResult)
	last      string // the previous result's state; written only by the check
}

func newSecurityCheck(env collectors.Env, run func(context.Context) (bool, error), logChange func(checkResult)) *securityCheck {
	c := &securityCheck{logChange: logChange}
	c.value = refresh.New(func(ctx context.Context) checkResult {
		bad, err := run(ctx)
		r := checkResult{bad: bad, err: err, at: env.Now()}
		if s := r.state("bad", "good") + errText(err); s != c.last {
			c.last = s
			c.logChange(r)
		}
		return r
	}, env.Kubelet.SecurityCheckInterval(), env.Now)
	return c
}

// result returns the newest result; false when the first check has not
// finished by the time ctx is done.
func (c *securityCheck) result(ctx context.Context) (checkResult, bool) { return c.value.Get(ctx) }

// state names the result: bad, good or "unknown".
func (r checkResult) state(bad, good string) string {
	switch {
	case r.err != nil:
		return "unknown"
	case r.bad:
		return bad
	}
	return good
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return ": " + err.Error()
}

// securityCollector serves one security check.
type securityCollector struct {
	check *securityCheck
	securityOutcome
}

// securityOutcome is what a check reports and logs.
type securityOutcome struct {
	name              string // for errors: "read-only port check"
	bad, good         string // the known states' names
	gauge, state, ran *prometheus.Desc
	// Logged once per change of state; a bad state names the kubelet
	// setting to change.
	unknownMsg, badMsg, goodMsg string
}

func newSecurityCollector(env collectors.Env, run func(context.Context) (bool, error), o securityOutcome) *securityCollector {
	logger := env.Logger
	return &securityCollector{
		securityOutcome: o,
		check: newSecurityCheck(env, run, func(r checkResult) {
			switch {
			case r.err != nil:
				logger.Warn(o.unknownMsg, "err", r.err)
			case r.bad:
				logger.Warn(o.badMsg)
			default:
				logger.Info(o.goodMsg)
			}
		}),
	}
}

func (c *securityCollector) Update(ctx context.Context, ch chan<- prometheus.Metric) error {
	r, ok := c.check.result(ctx)
	if !ok {
		return fmt.Errorf("the first %s has not finished: %w", c.name, ctx.Err())
	}
	if r.err == nil {
		v := 0.0
		if r.bad {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(c.gauge, prometheus.GaugeValue, v)
	}
	current := r.state(c.bad, c.good)
	for _, s := range []string{c.bad, c.good, "unknown"} {
		v := 0.0
		if s == current {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(c.state, prometheus.GaugeValue, v, s)
	}
	ch <- prometheus.MustNewConstMetric(c.ran, prometheus.GaugeValue, float64(r.at.UnixNano())/1e9)
	return nil
}

// newReadOnlyPortCollector reports whether the kubelet's unauthenticated
// read-only port (10255) is open: on it anyone who reaches the node reads
// every pod spec, environment values included. CIS benchmarks require it
// off.
func newReadOnlyPortCollector(env collectors.Env) *securityCollector {
	return newSecurityCollector(env, env.Kubelet.ReadOnlyPortOpen, securityOutcome{
		name: "read-only port check", bad: "open", good: "closed",
		gauge: prometheus.NewDesc("nodeagent_kubelet_readonly_port_open",
			"nodeagent: whether the kubelet's unauthenticated read-only port serves pod specs (1) or refuses connections (0); absent while the check cannot tell (see nodeagent_kubelet_readonly_port_state).",
			nil, nil),
		state: prometheus.NewDesc("nodeagent_kubelet_readonly_port_state",
			"nodeagent: the read-only port check's outcome: open, closed, or unknown (no answer in time, or an answer that is not a kubelet's); 1 for the current state.",
			[]string{"state"}, nil),
		ran: prometheus.NewDesc("nodeagent_kubelet_readonly_port_last_check_timestamp_seconds",
			"nodeagent: when the read-only port check last ran (it runs at start and then every --kubelet.security-check-interval).",
			nil, nil),
		unknownMsg: "cannot tell whether the kubelet's read-only port is open; reported as unknown",
		badMsg: "the kubelet's read-only port is open: anyone who reaches it reads every pod spec on this node, environment values included, without credentials; " +
			"set readOnlyPort: 0 in the kubelet configuration (or --read-only-port=0)",
		goodMsg: "the kubelet's read-only port is closed",
	})
}

// newAnonymousAuthCollector reports whether the kubelet's authenticated
// port accepts requests without credentials (as system:anonymous).
func newAnonymousAuthCollector(env collectors.Env) *securityCollector {
	return newSecurityCollector(env, env.Kubelet.AnonymousAuthEnabled, securityOutcome{
		name: "anonymous-auth check", bad: "enabled", good: "disabled",
		gauge: prometheus.NewDesc("nodeagent_kubelet_anonymous_auth_enabled",
			"nodeagent: whether the kubelet's authenticated port accepts requests without credentials (1) or refuses them with 401 (0); absent while the check cannot tell (see nodeagent_kubelet_anonymous_auth_state).",
			nil, nil),
		state: prometheus.NewDesc("nodeagent_kubelet_anonymous_auth_state",
			"nodeagent: the anonymous-auth check's outcome: enabled, disabled, or unknown (unreachable, TLS failure, timeout); 1 for the current state.",
			[]string{"state"}, nil),
		ran: prometheus.NewDesc("nodeagent_kubelet_anonymous_auth_last_check_timestamp_seconds",
			"nodeagent: when the anonymous-auth check last ran (it runs at start and then every --kubelet.security-check-interval).",
			nil, nil),
		unknownMsg: "cannot tell whether the kubelet accepts anonymous requests; reported as unknown",
		badMsg: "the kubelet accepts requests without credentials (as system:anonymous) on its authenticated port; only its authorization stands between anyone on the network and the node's pods, logs and exec; " +
			"set authentication.anonymous.enabled: false in the kubelet configuration (or --anonymous-auth=false)",
		goodMsg: "the kubelet refuses anonymous requests (401)",
	})
}

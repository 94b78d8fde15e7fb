package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/alecthomas/kingpin/v2"

	"github.com/nodeagent/nodeagent/cmd/nodeagent/doctor"
	"github.com/nodeagent/nodeagent/kubeletclient"
)

// doctorOptions are the doctor command's own flags. What it checks is
// set by the serve flags (--path.*, --kubelet.*, --kubeconfig,
// --web.*), which are the application's and so shared: doctor reads the
// node the way the agent given the same flags does.
type doctorOptions struct {
	output        string
	timeout       time.Duration
	checkTimeout  time.Duration
	nodeName      string
	agentURL      string
	agentToken    string
	inherit       bool
	prometheusURL string
	symptom       string
	pod           string
}

func addDoctorCommands(app *kingpin.Application) (checkCmd, whyCmd *kingpin.CmdClause, o *doctorOptions) {
	o = &doctorOptions{}
	cmd := app.Command("doctor", "Check each layer of the metrics stack from this node (host filesystems, cgroups, kubelet, metrics-server, kube-state-metrics, metrics adapters, Prometheus) and say which is silent and why; exit code 1 when a check fails, 2 on usage errors. "+
		"The --path.*, --kubelet.*, --kubeconfig and --web.* flags are the agent's; without --no-agent.inherit-flags, those of the running agent (the same executable, visible in /proc) are used first. See docs/troubleshooting.md.")
	cmd.Flag("output", "Output format: table or json (schema in docs/troubleshooting.md).").Short('o').Default("table").EnumVar(&o.output, "table", "json")
	cmd.Flag("timeout", "Deadline of the whole run; checks still running then are reported unfinished.").Default("10s").DurationVar(&o.timeout)
	cmd.Flag("check-timeout", "Deadline of each check (each request to the kubelet, the API server, the agent or Prometheus).").Default("5s").DurationVar(&o.checkTimeout)
	cmd.Flag("node.name", "This node's name in the cluster (the Node, the node label of Prometheus targets). Default: $NODE_NAME, else the host name.").Default("").StringVar(&o.nodeName)
	cmd.Flag("agent.url", "Base URL of the running agent, whose /metrics/nodeagent says who scrapes it. Default: from --web.listen-address on 127.0.0.1, https when --web.kubernetes-auth or a web-config certificate is set (not verified: loopback only).").Default("").StringVar(&o.agentURL)
	cmd.Flag("agent.token-file", "Bearer token for the agent under --web.kubernetes-auth, sent over https only. The default is the pod's service-account token.").Default(kubeletclient.DefaultTokenFile).StringVar(&o.agentToken)
	cmd.Flag("agent.inherit-flags", "Use the running agent's flags (found in /proc as the same executable) before the ones given here, so that kubectl exec into its pod checks what it reads.").Default("true").BoolVar(&o.inherit)
	cmd.Flag("prometheus.url", "Prometheus' base URL (http://prometheus-k8s.monitoring:9090): also ask it whether this node's targets are up and which stock jobs have series for it.").Default("").StringVar(&o.prometheusURL)
	checkCmd = cmd.Command("check", "Run every check (the default).").Default()
	whyCmd = cmd.Command("why", "Walk the layers for one symptom and say which is the first silent one.")
	var names []string
	var help strings.Builder
	for _, s := range doctor.Symptoms {
		names = append(names, s.Name)
		fmt.Fprintf(&help, " %s: %s.", s.Name, s.Summary)
	}
	whyCmd.Arg("symptom", "One of:"+help.String()).Required().EnumVar(&o.symptom, names...)
	whyCmd.Flag("pod", "The pod pod-missing asks about, as namespace/name.").Default("").StringVar(&o.pod)
	return checkCmd, whyCmd, o
}

// runDoctor runs doctor with the running agent's flags first when it
// finds the agent, and prints the report.
func runDoctor(ctx context.Context, c *cli, args []string, stdout, stderr io.Writer) int {
	flagsFrom := ""
	if c.doctor.inherit {
		a, err := doctor.FindAgent("/proc")
		switch {
		case err == nil:
			// The agent's flags first, then this command line's, which win.
			merged, code := parse(append(a.Flags(), args...), io.Discard, io.Discard)
			if merged == nil || code != 0 {
				fmt.Fprintf(stderr, "nodeagent doctor: the running agent's flags (pid %d) do not parse; using this command line's only\n", a.PID)
				break
			}
			c = merged
			flagsFrom = fmt.Sprintf("pid %d", a.PID)
		case !errors.Is(err, doctor.ErrNoAgentProcess):
			fmt.Fprintf(stderr, "nodeagent doctor: %v\n", err)
		}
	}
	opts, err := c.doctorOptions()
	if err != nil {
		fmt.Fprintf(stderr, "nodeagent doctor: %v (try --help)\n", err)
		return 2
	}
	if c.command == c.doctorWhyCmd.FullCommand() {
		opts.Symptom, opts.Pod = c.doctor.symptom, c.doctor.pod
	} else if c.doctor.pod != "" {
		fmt.Fprintln(stderr, "nodeagent doctor: --pod goes with doctor why pod-missing (try --help)")
		return 2
	}
	r, err := doctor.Run(ctx, opts)
	if err != nil {
		fmt.Fprintf(stderr, "nodeagent doctor: %v (try --help)\n", err)
		if errors.Is(err, doctor.ErrUsage) {
			return 2
		}
		return 1
	}
	r.FlagsFrom = flagsFrom
	write := r.WriteTable
	if c.doctor.output == "json" {
		write = r.WriteJSON
	}
	if err := write(stdout); err != nil {
		fmt.Fprintf(stderr, "nodeagent doctor: %v\n", err)
		return 1
	}
	return r.ExitCode()
}

// doctorOptions turns the parsed flags into doctor's options.
func (c *cli) doctorOptions() (doctor.Options, error) {
	s, d := c.serve, c.doctor
	if err := s.kubelet.Validate(); err != nil {
		return doctor.Options{}, err
	}
	node := d.nodeName
	if node == "" {
		node = s.getenv("NODE_NAME")
	}
	if node == "" {
		if h, err := os.Hostname(); err == nil {
			// The kubelet's default node name is the host name, lower-cased.
			node = strings.ToLower(h)
		}
	}
	agent := doctor.AgentOptions{URL: d.agentURL, TokenFile: d.agentToken}
	if agent.URL == "" {
		agent.URL, agent.Unreadable = s.agentURL()
		agent.Derived = true
		if !s.kubeAuth.Enabled {
			agent.TokenFile = "" // the agent takes no token: send none
		}
	}
	return doctor.Options{
		ProcFS:       s.paths.ProcFS,
		SysFS:        s.paths.SysFS,
		RootFS:       s.paths.RootFS,
		CgroupFS:     s.paths.CgroupFS,
		Kubelet:      s.kubelet,
		KubeAPI:      s.kubeAPI,
		Getenv:       s.getenv,
		NodeName:     node,
		Agent:        agent,
		Prometheus:   doctor.PrometheusOptions{URL: d.prometheusURL},
		Timeout:      d.timeout,
		CheckTimeout: d.checkTimeout,
	}, nil
}

// agentURL is where the agent these serve flags describe listens, seen
// from the same host: the first TCP --web.listen-address on loopback,
// https when it serves TLS (--web.kubernetes-auth, or a certificate in
// the web config). unreadable says why doctor cannot read it at all.
func (o *serveOptions) agentURL() (u, unreadable string) {
	addr := defaultListenAddress
	for _, a := range *o.web.WebListenAddresses {
		if !strings.HasPrefix(a, "vsock://") {
			addr = a
			break
		}
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		port = "9812"
	}
	host, _, _ := net.SplitHostPort(addr)
	switch ip := net.ParseIP(host); {
	case host == "" || (ip != nil && ip.IsUnspecified() && ip.To4() != nil):
		host = "127.0.0.1"
	case ip != nil && ip.IsUnspecified():
		host = "::1"
	}
	scheme := "http"
	if o.kubeAuth.Enabled {
		scheme = "https"
	}
	if f := *o.web.WebConfigFile; f != "" {
		wc, err := readWebConfig(f)
		switch {
		case err != nil:
			unreadable = err.Error()
		case wc.TLS.ClientAuthType == "RequireAnyClientCert" || wc.TLS.ClientAuthType == "RequireAndVerifyClientCert":
			unreadable = fmt.Sprintf("it requires client certificates (client_auth_type %s in --web.config.file %s), and doctor has none; --prometheus.url asks Prometheus instead", wc.TLS.ClientAuthType, f)
		case len(wc.Users) > 0:
			unreadable = fmt.Sprintf("it requires basic auth (basic_auth_users in --web.config.file %s); --prometheus.url asks Prometheus instead", f)
		}
		if wc.TLS.CertFile != "" || wc.TLS.Cert != "" {
			scheme = "https"
		}
	}
	return scheme + "://" + net.JoinHostPort(host, port), unreadable
}

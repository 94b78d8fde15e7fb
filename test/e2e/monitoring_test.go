package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"text/template"
	"time"

	"sigs.k8s.io/yaml"
)

// monitoring is kube-state-metrics and Prometheus, started for the tests.
type monitoring struct {
	dir           string
	prometheusURL string
	procs         []*exec.Cmd
	jobs          []string // the scrape jobs of prometheus.yml
}

// startAll starts kube-state-metrics with the cluster's admin kubeconfig
// and Prometheus with testdata/prometheus.yml.tmpl filled in from the env
// file (checked by promtool first), each on its loopback port, and waits
// until both answer.
func (s *monitoring) startAll(env map[string]string) error {
	for _, k := range []string{"KUBE_STATE_METRICS_BIN", "PROMETHEUS_BIN", "PROMTOOL_BIN", "KUBECONFIG", "KUBE_STATE_METRICS_PORT", "PROMETHEUS_PORT"} {
		if env[k] == "" {
			return fmt.Errorf("the env file lacks %s (cluster.sh build-e2e, then up cluster)", k)
		}
	}
	ksmPort, err := strconv.Atoi(env["KUBE_STATE_METRICS_PORT"])
	if err != nil {
		return fmt.Errorf("KUBE_STATE_METRICS_PORT: %w", err)
	}
	s.prometheusURL = "http://127.0.0.1:" + env["PROMETHEUS_PORT"]
	dir := s.dir

	cfg, jobs, err := prometheusConfig(env, ksmPort)
	if err != nil {
		return err
	}
	s.jobs = jobs
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, cfg, 0o600); err != nil {
		return err
	}
	if out, err := exec.Command(env["PROMTOOL_BIN"], "check", "config", cfgPath).CombinedOutput(); err != nil {
		return fmt.Errorf("promtool check config %s: %w\n%s", cfgPath, err, out)
	}

	if err := s.start("kube-state-metrics", env["KUBE_STATE_METRICS_BIN"],
		"--kubeconfig="+env["KUBECONFIG"], "--host=127.0.0.1", "--port="+strconv.Itoa(ksmPort),
		"--telemetry-host=127.0.0.1", "--telemetry-port="+strconv.Itoa(ksmPort+1)); err != nil {
		return err
	}
	if err := s.start("prometheus", env["PROMETHEUS_BIN"],
		"--config.file="+cfgPath, "--storage.tsdb.path="+filepath.Join(dir, "tsdb"),
		"--web.listen-address=127.0.0.1:"+env["PROMETHEUS_PORT"]); err != nil {
		return err
	}
	for url, what := range map[string]string{
		fmt.Sprintf("http://127.0.0.1:%d/healthz", ksmPort): "kube-state-metrics",
		s.prometheusURL + "/-/ready":                        "prometheus",
	} {
		if err := waitHTTP(url, time.Minute); err != nil {
			return fmt.Errorf("%s (log %s): %w", what, filepath.Join(dir, what+".log"), err)
		}
	}
	return nil
}

// prometheusConfig fills in the template; jobs are its job names, in order.
func prometheusConfig(env map[string]string, ksmPort int) ([]byte, []string, error) {
	// port is the port of a URL of the env file.
	port := func(raw string) (string, error) {
		u, err := url.Parse(raw)
		if err != nil || u.Port() == "" {
			return "", fmt.Errorf("no port in %q", raw)
		}
		return u.Port(), nil
	}
	tmpl, err := template.New("prometheus.yml.tmpl").Funcs(template.FuncMap{"port": port}).Option("missingkey=error").
		ParseFiles(filepath.Join("testdata", "prometheus.yml.tmpl"))
	if err != nil {
		return nil, nil, err
	}
	data := map[string]any{"Env": env, "KSM": "127.0.0.1:" + strconv.Itoa(ksmPort), "KSMTelemetry": "127.0.0.1:" + strconv.Itoa(ksmPort+1)}
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, data); err != nil {
		return nil, nil, err
	}
	jobs, err := jobNames(buf.Bytes())
	return buf.Bytes(), jobs, err
}

// start runs a program with its output in dir/name.log; it dies with the
// test binary.
func (s *monitoring) start(name, bin string, args ...string) error {
	log, err := os.Create(filepath.Join(s.dir, name+".log"))
	if err != nil {
		return err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		log.Close()
		return fmt.Errorf("%s: %w", bin, err)
	}
	s.procs = append(s.procs, cmd)
	return nil
}

// stop ends what start started, newest first, and shows their logs when
// asked to (E2E_LOGS=1).
func (s *monitoring) stop() {
	for i := len(s.procs) - 1; i >= 0; i-- {
		p := s.procs[i]
		_ = p.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = p.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = p.Process.Kill()
			<-done
		}
	}
	if os.Getenv("E2E_LOGS") == "1" {
		logs, _ := filepath.Glob(filepath.Join(s.dir, "*.log"))
		for _, l := range logs {
			b, _ := os.ReadFile(l)
			fmt.Fprintf(os.Stderr, "==== %s\n%s\n", l, b)
		}
	}
}

func waitHTTP(url string, within time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	var last error
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		last = err
		select {
		case <-ctx.Done():
			return last
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// jobNames are the scrape jobs of a Prometheus configuration.
func jobNames(cfg []byte) ([]string, error) {
	var c struct {
		ScrapeConfigs []struct {
			JobName string `json:"job_name"`
		} `json:"scrape_configs"`
	}
	if err := yaml.Unmarshal(cfg, &c); err != nil {
		return nil, err
	}
	var jobs []string
	for _, sc := range c.ScrapeConfigs {
		jobs = append(jobs, sc.JobName)
	}
	return jobs, nil
}

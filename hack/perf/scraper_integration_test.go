package main

import (
	"context"
	"net/http"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/nodeagent/nodeagent/internal/fakekubelet"
)

// TestIntegrationPerfScraper serves nodeagent as make perf-kubelet now does
// (TLS and --web.kubernetes-auth against the test cluster's API server) and
// scrapes it with the scraper's token; without the token the agent answers
// 401; afterwards the scraper's ServiceAccount and rights are gone.
func TestIntegrationPerfScraper(t *testing.T) {
	env := fakekubelet.IntegrationEnv(t)
	kc := env["KUBECONFIG"]
	if kc == "" {
		t.Skip("the test cluster runs without an API server (CLUSTER_MODE=kubelet)")
	}
	bin := filepath.Join(t.TempDir(), "nodeagent")
	build := exec.Command("go", "build", "-o", bin, "github.com/nodeagent/nodeagent/cmd/nodeagent")
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	token, remove, err := scraperToken(ctx, kc)
	if err != nil {
		t.Fatal(err)
	}
	removed := false
	defer func() {
		if !removed {
			_ = remove()
		}
	}()
	p, err := launch(exec.Command, scraperClient(token), "nodeagent", bin, "--web.listen-address", "/metrics/node",
		"--log.level=error", "--no-collector.cadvisor", "--web.kubernetes-auth", "--kubeconfig="+kc)
	if err != nil {
		t.Fatal(err)
	}
	defer p.stop()
	s, err := scrapeSeries(p, false)
	if err != nil {
		t.Fatal(err)
	}
	if s.series == 0 {
		t.Error("the scraper's scrape held no series")
	}
	resp, err := scraperClient("").Get(p.url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("without a token: %s, want 401", resp.Status)
	}

	removed = true
	if err := remove(); err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kc)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().ServiceAccounts(scraperNamespace).Get(ctx, scraperName, metav1.GetOptions{}); err == nil {
		t.Errorf("ServiceAccount %s/%s is still there", scraperNamespace, scraperName)
	}
	if _, err := cs.RbacV1().ClusterRoles().Get(ctx, scraperName, metav1.GetOptions{}); err == nil {
		t.Errorf("ClusterRole %s is still there", scraperName)
	}
}

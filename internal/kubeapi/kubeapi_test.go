package kubeapi

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	authnv1 "k8s.io/api/authentication/v1"

	"github.com/nodeagent/nodeagent/internal/fakeapiserver"
)

func TestConfigFromKubeconfig(t *testing.T) {
	t.Parallel()
	api := fakeapiserver.New(t)
	cfg, err := Options{Kubeconfig: api.Kubeconfig}.Config()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Host != api.URL || cfg.BearerToken != api.ClientToken || !strings.HasPrefix(cfg.UserAgent, "nodeagent/") {
		t.Errorf("host %q, token %q, user agent %q; want %q, the kubeconfig's token, nodeagent/…", cfg.Host, cfg.BearerToken, cfg.UserAgent, api.URL)
	}
	// The client works against the server the kubeconfig names.
	rc, err := RESTClient(cfg, authnv1.SchemeGroupVersion, authnv1.AddToScheme)
	if err != nil {
		t.Fatal(err)
	}
	api.AddToken("scraper", fakeapiserver.User{Name: "someone"})
	var out authnv1.TokenReview
	err = rc.Post().Resource("tokenreviews").Body(&authnv1.TokenReview{Spec: authnv1.TokenReviewSpec{Token: "scraper"}}).Do(t.Context()).Into(&out)
	if err != nil || !out.Status.Authenticated || out.Status.User.Username != "someone" {
		t.Errorf("TokenReview through the REST client: %+v, %v", out.Status, err)
	}
}

func TestConfigErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope")
	if _, err := (Options{Kubeconfig: missing}).Config(); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing kubeconfig: %v; want an error naming %s", err, missing)
	}
	if os.Getenv("KUBERNETES_SERVICE_HOST") != "" {
		t.Skip("running in a pod: the in-cluster case cannot fail here")
	}
	if _, err := (Options{}).Config(); !errors.Is(err, ErrNotInCluster) {
		t.Errorf("no kubeconfig outside a pod: %v; want ErrNotInCluster", err)
	}
}

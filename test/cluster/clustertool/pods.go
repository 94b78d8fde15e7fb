package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// waitPodsCommand waits until the kubelet's own /pods lists each named
// pod as Running with every container ready. It asks the kubelet, not the
// API server, so it works in the standalone kubelet mode too.
func waitPodsCommand(fs *flag.FlagSet) func(context.Context) error {
	base := fs.String("kubelet", "", "the kubelet's URL")
	caFile := fs.String("ca", "", "CA of its serving certificate")
	certFile := fs.String("cert", "", "client certificate")
	keyFile := fs.String("key", "", "client key")
	namespace := fs.String("namespace", "default", "the pods' namespace")
	names := fs.String("names", "", "comma-separated pod names")
	timeout := fs.Duration("timeout", 2*time.Minute, "how long to wait")
	return func(ctx context.Context) error {
		if *base == "" || *names == "" {
			return errors.New("-kubelet and -names are required")
		}
		c, err := tlsClient(*caFile, *certFile, *keyFile)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(ctx, *timeout)
		defer cancel()
		want := strings.Split(*names, ",")
		var pending []string
		for {
			pods, err := kubeletPods(ctx, c, *base+"/pods")
			if err == nil {
				if pending = notRunning(pods, *namespace, want); len(pending) == 0 {
					return nil
				}
			}
			select {
			case <-ctx.Done():
				if err != nil {
					return err
				}
				return fmt.Errorf("after %v, not running: %s", *timeout, strings.Join(pending, "; "))
			case <-time.After(time.Second):
			}
		}
	}
}

func tlsClient(caFile, certFile, keyFile string) (*http.Client, error) {
	ca, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, fmt.Errorf("%s: no certificate", caFile)
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs: pool, Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}}}, nil
}

func kubeletPods(ctx context.Context, c *http.Client, url string) (*corev1.PodList, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	var pods corev1.PodList
	if err := json.Unmarshal(body, &pods); err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	return &pods, nil
}

// notRunning describes each wanted pod that is missing, not Running, or
// has a container that is not ready.
func notRunning(pods *corev1.PodList, namespace string, want []string) []string {
	byName := map[string]*corev1.Pod{}
	for i := range pods.Items {
		if p := &pods.Items[i]; p.Namespace == namespace {
			byName[p.Name] = p
		}
	}
	var out []string
	for _, name := range want {
		p, ok := byName[name]
		switch {
		case !ok:
			out = append(out, name+": not listed")
		case p.Status.Phase != corev1.PodRunning:
			out = append(out, fmt.Sprintf("%s: %s", name, p.Status.Phase))
		default:
			for _, cs := range p.Status.ContainerStatuses {
				if !cs.Ready {
					out = append(out, fmt.Sprintf("%s: container %s not ready", name, cs.Name))
				}
			}
		}
	}
	sort.Strings(out)
	return out
}

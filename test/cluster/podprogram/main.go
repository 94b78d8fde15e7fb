// Command podprogram is the one program in the harness's image, imported
// into containerd as registry.k8s.io/pause:3.10 so that no pod ever pulls.
// As /pause with no flags it is a pod sandbox's first process: it reaps
// orphans and waits for SIGTERM. The test pods run it with flags:
//
//	-alloc-mb, -busy   hold memory and burn CPU, so cgroup counters move
//	-whoami URL        prove the pod's projected ServiceAccount token works:
//	                   a SelfSubjectReview against the API server at URL,
//	                   exit status 0 when it names the pod's account
package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"
)

// saDir is where the kubelet mounts the projected token, CA and namespace.
const saDir = "/var/run/secrets/kubernetes.io/serviceaccount"

func main() {
	allocMB := flag.Int("alloc-mb", 0, "MiB of memory to allocate and keep touched")
	busy := flag.Duration("busy", 0, "CPU time to burn every second")
	whoami := flag.String("whoami", "", "API server URL: review the pod's own ServiceAccount token there and exit")
	flag.Parse()

	if *whoami != "" {
		user, err := selfSubjectReview(*whoami, saDir)
		if err != nil {
			fmt.Fprintln(os.Stderr, "whoami:", err)
			os.Exit(1)
		}
		fmt.Println(user)
		return
	}
	hold := allocate(*allocMB)
	pause(*busy, hold)
}

// allocate returns n MiB written once, so they are resident.
func allocate(n int) [][]byte {
	var hold [][]byte
	for i := 0; i < n; i++ {
		b := make([]byte, 1<<20)
		for j := range b {
			b[j] = byte(j)
		}
		hold = append(hold, b)
	}
	return hold
}

// pause reaps children (it is PID 1 of a sandbox) until SIGTERM or SIGINT,
// spinning busy each second.
func pause(busy time.Duration, hold [][]byte) {
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case s := <-sigs:
			if s != syscall.SIGCHLD {
				return
			}
			for {
				var ws syscall.WaitStatus
				if pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil); pid <= 0 || err != nil {
					break
				}
			}
		case <-tick.C:
			for end := time.Now().Add(busy); time.Now().Before(end); {
			}
			if len(hold) > 0 {
				hold[0][0]++ // keep the memory in use
			}
		}
	}
}

// selfSubjectReview asks the API server at base who the token in dir is.
func selfSubjectReview(base, dir string) (string, error) {
	token, err := os.ReadFile(filepath.Join(dir, "token"))
	if err != nil {
		return "", err
	}
	ca, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
	if err != nil {
		return "", err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return "", fmt.Errorf("%s/ca.crt: no certificate", dir)
	}
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	url := base + "/apis/authentication.k8s.io/v1/selfsubjectreviews"
	body := []byte(`{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}`)
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+string(bytes.TrimSpace(token)))
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return "", fmt.Errorf("POST %s: %w", url, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", fmt.Errorf("POST %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("POST %s: %s: %s", url, resp.Status, out)
	}
	var review struct {
		Status struct {
			UserInfo struct {
				Username string `json:"username"`
			} `json:"userInfo"`
		} `json:"status"`
	}
	if err := json.Unmarshal(out, &review); err != nil {
		return "", fmt.Errorf("POST %s: %w", url, err)
	}
	if review.Status.UserInfo.Username == "" {
		return "", fmt.Errorf("POST %s: no user in %s", url, out)
	}
	return review.Status.UserInfo.Username, nil
}

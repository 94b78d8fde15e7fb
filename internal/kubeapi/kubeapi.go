// Package kubeapi builds nodeagent's connection to the Kubernetes API
// server: where it is and which credentials to use (--kubeconfig, or the
// pod's in-cluster service account), and REST clients that know only the
// API types their caller registers.
//
// It deliberately avoids client-go's typed clientset: the clientset's
// scheme registers every built-in API group, which grows the nodeagent
// binary from 24.6 MB to 58.9 MB; a REST client over the few types a caller
// needs costs 6 MB (client-go's rest and clientcmd packages, most of it).
package kubeapi

import (
	"errors"
	"fmt"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/common/version"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Options say how to reach the API server.
type Options struct {
	// Kubeconfig is a kubeconfig file; empty means the pod's in-cluster
	// configuration (KUBERNETES_SERVICE_HOST and the service-account
	// token, which client-go re-reads as it rotates).
	Kubeconfig string
}

// AddFlags registers --kubeconfig on app, writing into o.
func (o *Options) AddFlags(app *kingpin.Application) {
	app.Flag("kubeconfig", "Kubeconfig file for the Kubernetes API server (its current context). Empty: the pod's in-cluster service account.").
		Default("").StringVar(&o.Kubeconfig)
}

// ErrNotInCluster says there is no --kubeconfig and the process does not
// run in a pod.
var ErrNotInCluster = errors.New("no --kubeconfig given and not running in a Kubernetes pod")

// Config loads the API server's address and credentials. Its user agent
// is nodeagent's; callers set their own rate limits on a copy.
func (o Options) Config() (*rest.Config, error) {
	var cfg *rest.Config
	var err error
	if o.Kubeconfig == "" {
		cfg, err = rest.InClusterConfig()
		if errors.Is(err, rest.ErrNotInCluster) {
			return nil, fmt.Errorf("%w (KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are unset): give --kubeconfig", ErrNotInCluster)
		}
		if err != nil {
			return nil, fmt.Errorf("in-cluster Kubernetes API configuration: %w", err)
		}
	} else {
		cfg, err = clientcmd.BuildConfigFromFlags("", o.Kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("--kubeconfig %s: %w", o.Kubeconfig, err)
		}
	}
	cfg.UserAgent = "nodeagent/" + version.Version
	return cfg, nil
}

// RESTClient returns a client for one API group version whose codec knows
// only the types addToScheme registers (for example
// authenticationv1.AddToScheme), so that the binary carries no other API
// types. Requests go to /apis/<group>/<version>/….
func RESTClient(cfg *rest.Config, gv schema.GroupVersion, addToScheme func(*runtime.Scheme) error) (*rest.RESTClient, error) {
	s := runtime.NewScheme()
	if err := addToScheme(s); err != nil {
		return nil, fmt.Errorf("registering %s types: %w", gv, err)
	}
	c := rest.CopyConfig(cfg)
	c.GroupVersion = &gv
	c.APIPath = "/apis"
	if gv.Group == "" {
		c.APIPath = "/api"
	}
	c.NegotiatedSerializer = serializer.NewCodecFactory(s).WithoutConversion()
	if c.ContentType == "" {
		c.ContentType = runtime.ContentTypeJSON
	}
	rc, err := rest.RESTClientFor(c)
	if err != nil {
		return nil, fmt.Errorf("client for the Kubernetes API %s at %s: %w", gv, cfg.Host, err)
	}
	return rc, nil
}

package scraperauth

import (
	"context"
	"errors"
	"fmt"

	authnv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/rest"

	"github.com/nodeagent/nodeagent/internal/kubeapi"
)

// ErrReview says the API server could not give an answer (unreachable,
// too slow, failing, or refusing nodeagent's own credentials): the request
// is neither allowed nor denied, and gets 503.
var ErrReview = errors.New("the Kubernetes API server gave no review")

// identity is whom a TokenReview says a token belongs to: what a
// SubjectAccessReview is asked about.
type identity struct {
	User   string                        `json:"user"`
	UID    string                        `json:"uid,omitempty"`
	Groups []string                      `json:"groups,omitempty"`
	Extra  map[string]authzv1.ExtraValue `json:"extra,omitempty"`
}

// decision is a SubjectAccessReview's answer.
type decision struct {
	allowed bool
	reason  string
}

// reviewer asks the API server. It holds one REST client per API group,
// each knowing only its review type (see package kubeapi for why not the
// typed clientset).
type reviewer struct {
	host         string
	authn, authz *rest.RESTClient
}

// Client-side rate limit towards the API server. With the caches, a
// steady Prometheus pair costs a few reviews per cache TTL; the limit
// bounds what a flood of new tokens (any pod has one) can make nodeagent
// send, the excess waiting until --web.kubernetes-auth.timeout and then
// getting 503.
const (
	apiQPS   = 20
	apiBurst = 40
)

func newReviewer(cfg *rest.Config) (*reviewer, error) {
	c := rest.CopyConfig(cfg)
	c.QPS, c.Burst = apiQPS, apiBurst
	authn, err := kubeapi.RESTClient(c, authnv1.SchemeGroupVersion, authnv1.AddToScheme)
	if err != nil {
		return nil, err
	}
	authz, err := kubeapi.RESTClient(c, authzv1.SchemeGroupVersion, authzv1.AddToScheme)
	if err != nil {
		return nil, err
	}
	return &reviewer{host: cfg.Host, authn: authn, authz: authz}, nil
}

// reviewToken runs a TokenReview: the token's identity and true when the
// API server authenticates it, false when it does not, an error wrapping
// ErrReview when there is no answer.
func (r *reviewer) reviewToken(ctx context.Context, token string) (identity, bool, error) {
	var out authnv1.TokenReview
	err := r.authn.Post().Resource("tokenreviews").
		Body(&authnv1.TokenReview{Spec: authnv1.TokenReviewSpec{Token: token}}).
		Do(ctx).Into(&out)
	if err != nil {
		return identity{}, false, r.explain("TokenReview", "tokenreviews", "authentication.k8s.io", err)
	}
	st := out.Status
	if !st.Authenticated || st.User.Username == "" {
		return identity{}, false, nil
	}
	id := identity{User: st.User.Username, UID: st.User.UID, Groups: st.User.Groups}
	if len(st.User.Extra) > 0 {
		id.Extra = make(map[string]authzv1.ExtraValue, len(st.User.Extra))
		for k, v := range st.User.Extra {
			id.Extra[k] = authzv1.ExtraValue(v)
		}
	}
	return id, true, nil
}

// reviewAccess runs a SubjectAccessReview of verb get on path as a
// non-resource URL for id.
func (r *reviewer) reviewAccess(ctx context.Context, id identity, path string) (decision, error) {
	var out authzv1.SubjectAccessReview
	err := r.authz.Post().Resource("subjectaccessreviews").
		Body(&authzv1.SubjectAccessReview{Spec: authzv1.SubjectAccessReviewSpec{
			User: id.User, UID: id.UID, Groups: id.Groups, Extra: id.Extra,
			NonResourceAttributes: &authzv1.NonResourceAttributes{Path: path, Verb: "get"},
		}}).
		Do(ctx).Into(&out)
	if err != nil {
		return decision{}, r.explain("SubjectAccessReview", "subjectaccessreviews", "authorization.k8s.io", err)
	}
	st := out.Status
	if st.EvaluationError != "" && !st.Allowed && !st.Denied {
		// An authorizer failed and none decided: RBAC may simply not have
		// been asked, so this is no denial to remember.
		return decision{}, fmt.Errorf("%w: SubjectAccessReview at %s: evaluation error: %s", ErrReview, r.host, st.EvaluationError)
	}
	return decision{allowed: st.Allowed && !st.Denied, reason: st.Reason}, nil
}

// explain wraps a failed review with what the operator can do about it.
func (r *reviewer) explain(kind, resource, group string, err error) error {
	switch {
	case apierrors.IsForbidden(err):
		return fmt.Errorf("%w: %s at %s: nodeagent's own identity may not create %s; grant its ClusterRole {apiGroups: [%q], resources: [%q], verbs: [\"create\"]}: %w",
			ErrReview, kind, r.host, resource+"."+group, group, resource, err)
	case apierrors.IsUnauthorized(err):
		return fmt.Errorf("%w: %s at %s: the API server does not accept nodeagent's own credentials (--kubeconfig or the pod's service account): %w", ErrReview, kind, r.host, err)
	}
	return fmt.Errorf("%w: %s at %s: %w", ErrReview, kind, r.host, err)
}

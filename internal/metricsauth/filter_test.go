package metricsauth

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/time/rate"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/cache"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
)

// A fake API server that knows token "reader" (allowed to get /metrics)
// and "stranger" (allowed nothing); the end-to-end test does the same
// against a real one.
func fakeReviews(t *testing.T) (*fake.Clientset, *int) {
	cs := fake.NewClientset()
	reviews := 0
	cs.PrependReactor("create", "tokenreviews", func(a clienttesting.Action) (bool, runtime.Object, error) {
		reviews++
		tr := a.(clienttesting.CreateAction).GetObject().(*authenticationv1.TokenReview)
		switch tr.Spec.Token {
		case "reader", "stranger":
			tr.Status = authenticationv1.TokenReviewStatus{Authenticated: true,
				User: authenticationv1.UserInfo{Username: tr.Spec.Token, Extra: map[string]authenticationv1.ExtraValue{"k": {"v"}}}}
		}
		return true, tr, nil
	})
	cs.PrependReactor("create", "subjectaccessreviews", func(a clienttesting.Action) (bool, runtime.Object, error) {
		reviews++
		sar := a.(clienttesting.CreateAction).GetObject().(*authorizationv1.SubjectAccessReview)
		attrs := sar.Spec.NonResourceAttributes
		if sar.Spec.Extra["k"][0] != "v" {
			t.Errorf("extra of the user not passed on: %v", sar.Spec.Extra)
		}
		sar.Status.Allowed = sar.Spec.User == "reader" && attrs != nil && attrs.Path == "/metrics" && attrs.Verb == "get"
		return true, sar, nil
	})
	return cs, &reviews
}

func TestAuthenticatedMetrics(t *testing.T) {
	cases := []struct {
		name, method, path, authorization string
		want                              int
	}{
		{"no token", http.MethodGet, "/metrics", "", http.StatusUnauthorized},
		{"not a bearer token", http.MethodGet, "/metrics", "Basic cmVhZGVy", http.StatusUnauthorized},
		{"empty bearer token", http.MethodGet, "/metrics", "Bearer ", http.StatusUnauthorized},
		{"unknown token", http.MethodGet, "/metrics", "Bearer nobody", http.StatusUnauthorized},
		{"token without the right", http.MethodGet, "/metrics", "Bearer stranger", http.StatusForbidden},
		{"reader", http.MethodGet, "/metrics", "Bearer reader", http.StatusOK},
		{"reader, scheme in lower case", http.MethodGet, "/metrics", "bearer reader", http.StatusOK},
		{"reader, another verb", http.MethodPost, "/metrics", "Bearer reader", http.StatusForbidden},
		{"reader, another path", http.MethodGet, "/debug", "Bearer reader", http.StatusForbidden},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cs, _ := fakeReviews(t)
			handler := filtered(t, cs)
			if got := serve(handler, tc.method, tc.path, tc.authorization); got != tc.want {
				t.Errorf("status %d, want %d", got, tc.want)
			}
		})
	}
}

func TestAuthenticatedMetricsRemembersDecisions(t *testing.T) {
	cs, reviews := fakeReviews(t)
	handler := filtered(t, cs)
	for range 3 {
		if got := serve(handler, http.MethodGet, "/metrics", "Bearer reader"); got != http.StatusOK {
			t.Fatalf("status %d", got)
		}
	}
	if *reviews != 2 {
		t.Errorf("%d reviews for three scrapes with one token, want 2 (a TokenReview and a SubjectAccessReview)", *reviews)
	}
	if got := serve(handler, http.MethodGet, "/metrics", "Bearer stranger"); got != http.StatusForbidden {
		t.Errorf("another token: status %d, want the decision on it, not the reader's", got)
	}
}

// A flood of made-up tokens costs the API server at most the review
// budget; a known token keeps working through it.
func TestAuthenticatedMetricsBoundsReviewsOfUnknownTokens(t *testing.T) {
	cs, reviews := fakeReviews(t)
	// No refill during the test: the bound is the burst, exactly.
	reviewer := &metricsReviewer{cs: cs, decisions: cache.NewLRUExpireCache(maxDecisions), reviews: rate.NewLimiter(rate.Every(time.Hour), reviewBurst)}
	handler, err := reviewer.filter(logr.Discard(), http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	if err != nil {
		t.Fatal(err)
	}
	if got := serve(handler, http.MethodGet, "/metrics", "Bearer reader"); got != http.StatusOK {
		t.Fatalf("reader before the flood: status %d", got)
	}
	statuses := map[int]int{}
	for i := range 1000 {
		statuses[serve(handler, http.MethodGet, "/metrics", fmt.Sprintf("Bearer made-up-%d", i))]++
	}
	if *reviews != 2+reviewBurst-1 {
		t.Errorf("%d API requests for a reader and 1,000 made-up tokens, want %d (the reader's two, then one TokenReview per token within the budget)", *reviews, 2+reviewBurst-1)
	}
	if statuses[http.StatusUnauthorized] != reviewBurst-1 || statuses[http.StatusTooManyRequests] != 1000-(reviewBurst-1) {
		t.Errorf("statuses %v, want %d × 401 and the rest 429", statuses, reviewBurst-1)
	}
	if got := serve(handler, http.MethodGet, "/metrics", "Bearer reader"); got != http.StatusOK {
		t.Errorf("reader during the flood: status %d, want 200 from the remembered decision", got)
	}
}

func filtered(t *testing.T, cs *fake.Clientset) http.Handler {
	reviewer := &metricsReviewer{cs: cs, decisions: cache.NewLRUExpireCache(maxDecisions), reviews: rate.NewLimiter(rate.Inf, 0)}
	handler, err := reviewer.filter(logr.Discard(), http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	if err != nil {
		t.Fatal(err)
	}
	return handler
}

func serve(h http.Handler, method, path, authorization string) int {
	req := httptest.NewRequestWithContext(context.Background(), method, path, nil)
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code
}

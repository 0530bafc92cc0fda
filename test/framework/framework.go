// Package framework is the shared envtest harness of the integration and
// end-to-end suites: one real kube-apiserver and etcd per suite, the
// operator's CRD installed, and helpers that run the operator under the
// least-privilege identity it ships with.
//
// Every envtest suite (test/integration/..., test/faults, test/e2e) is a
// Ginkgo v2 suite with Gomega: one suite_test.go whose TestX calls
// RunSpecs and sets the Eventually defaults from timeouts.go, a
// BeforeSuite (or an Ordered container's BeforeAll) for the control plane,
// and Describe/It specs named after what they prove. Ginkgo because the
// integration suites already were, as kubebuilder scaffolds them and kueue
// keeps its integration framework: shared setup per suite or container,
// cleanup with DeferCleanup, and Eventually(func(g Gomega) {...}) instead
// of sleeps. Builders that more than one suite uses live in builders.go.
package framework

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/meshcloud/meshstack-operator/internal/operator"
)

// RepoRoot is the checkout's top directory.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Framework owns one envtest control plane.
type Framework struct {
	Env *envtest.Environment
	// Config and Client act as cluster admin.
	Config *rest.Config
	Client client.Client
}

// Start starts kube-apiserver and etcd (from KUBEBUILDER_ASSETS, which `make
// test` sets) and installs the operator's CRDs. Options adjust the
// environment before it starts (see WithAPIServerFlag).
func Start(options ...func(*envtest.Environment)) (*Framework, error) {
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join(RepoRoot(), "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
	}
	for _, o := range options {
		o(env)
	}
	cfg, err := env.Start()
	if err != nil {
		return nil, fmt.Errorf("starting envtest (run through `make test`, which provisions KUBEBUILDER_ASSETS): %w", err)
	}
	cfg.QPS, cfg.Burst = 1000, 2000
	c, err := client.New(cfg, client.Options{Scheme: operator.Scheme})
	if err != nil {
		_ = env.Stop()
		return nil, err
	}
	return &Framework{Env: env, Config: cfg, Client: c}, nil
}

// Stop stops the control plane.
func (f *Framework) Stop() error { return f.Env.Stop() }

// FillAggregatedClusterRoles does the aggregation controller's job, which
// envtest does not run: admin, edit and view get the rules of the
// ClusterRoles their aggregation rules select. Without it they grant
// nothing and access checks are meaningless.
func (f *Framework) FillAggregatedClusterRoles(ctx context.Context) error {
	// view aggregates into edit and edit into admin, so fill them in that order.
	for _, name := range []string{"view", "edit", "admin"} {
		var role rbacv1.ClusterRole
		if err := f.Client.Get(ctx, client.ObjectKey{Name: name}, &role); err != nil {
			return err
		}
		if role.AggregationRule == nil {
			continue
		}
		var rules []rbacv1.PolicyRule
		for _, sel := range role.AggregationRule.ClusterRoleSelectors {
			selector, err := metav1.LabelSelectorAsSelector(&sel)
			if err != nil {
				return err
			}
			var parts rbacv1.ClusterRoleList
			if err := f.Client.List(ctx, &parts, client.MatchingLabelsSelector{Selector: selector}); err != nil {
				return err
			}
			for _, p := range parts.Items {
				if p.Name != name {
					rules = append(rules, p.Rules...)
				}
			}
		}
		role.Rules = rules
		if err := f.Client.Update(ctx, &role); err != nil {
			return err
		}
	}
	return nil
}

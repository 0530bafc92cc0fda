// Package benchmark measures the operator against a real API server.
package benchmark

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1 "github.com/meshcloud/meshstack-operator/api/v1alpha1"
	"github.com/meshcloud/meshstack-operator/internal/operator"
	"github.com/meshcloud/meshstack-operator/internal/replicator"
	"github.com/meshcloud/meshstack-operator/test/framework"
)

const (
	projects = 300
	workers  = 10
)

var roles = []string{"admin", "edit", "view"}

// watchTimeout bounds every wait for a state a benchmark watches for.
var watchTimeout = 5 * time.Minute

// BenchmarkConvergence creates 300 MeshProjects with three roles each and
// times how long the operator (under its least-privilege identity, with its
// default flags) takes until all are Ready.
//
// The yardstick of what the API server allows is a perfect operator: before
// the real one starts, the benchmark itself makes, for 300 other projects,
// exactly the requests a converging operator must make (create the
// MeshProject as the user; then, as the operator's ServiceAccount with its
// rate limits, add the finalizer, create the namespace and three
// RoleBindings with the operator's marks, and write a Ready status), with as
// many parallel workers as the operator has. Reported: seconds for each,
// operator/direct (1.0 is the API server's own limit), the operator's write
// requests per project (Events included), and the writes it made when it
// started on the 300 hand-made projects (0: they are already converged).
func BenchmarkConvergence(b *testing.B) {
	ctx := context.Background()
	env := startEnv(b, ctx)
	sa, opts, direct, admin := env.sa, env.opts, env.direct, env.admin

	start := time.Now()
	parallel(b, projects, func(n int) error { return convergeByHand(ctx, admin, direct, fmt.Sprintf("d%d", n)) })
	directTime := time.Since(start)

	running, err := framework.StartManager(sa.Config, opts)
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		if err := running.Stop(); err != nil {
			b.Errorf("the manager stopped with %v", err)
		}
	}()
	if err := running.Manager.GetCache().WaitForCacheSync(ctx); !err {
		b.Fatal("cache did not sync")
	}

	var converge time.Duration
	var writes int64
	for i := 0; b.Loop(); i++ {
		wait := watchReady(b, ctx, admin, fmt.Sprintf("o%dx", i), projects)
		before := running.Writes()
		start := time.Now()
		parallel(b, projects, func(n int) error { return admin.Create(ctx, meshProject(fmt.Sprintf("o%dx%d", i, n))) })
		wait()
		converge += time.Since(start)
		writes += running.Writes() - before
	}
	perOp := converge.Seconds() / float64(b.N)
	b.ReportMetric(directTime.Seconds(), "direct-s/op")
	b.ReportMetric(perOp, "operator-s/op")
	b.ReportMetric(perOp/directTime.Seconds(), "operator/direct")
	b.ReportMetric(float64(writes)/float64(b.N*projects), "operator-writes/project")
}

func meshProject(customer string) *meshv1.MeshProject {
	p := &meshv1.MeshProject{
		ObjectMeta: metav1.ObjectMeta{Name: customer + "-bench"},
		Spec:       meshv1.MeshProjectSpec{CustomerIdentifier: meshv1.Identifier(customer), ProjectIdentifier: "bench"},
	}
	for _, role := range roles {
		p.Spec.RoleBindings = append(p.Spec.RoleBindings, meshv1.ProjectRoleBinding{
			Role: role, Users: []meshv1.SubjectName{meshv1.SubjectName("user-" + role)},
		})
	}
	return p
}

// convergeByHand makes the requests of a perfect operator for one project.
func convergeByHand(ctx context.Context, user, operatorClient client.Client, customer string) error {
	p := meshProject(customer)
	if err := user.Create(ctx, p); err != nil {
		return err
	}
	original := p.DeepCopy()
	p.Finalizers = append(p.Finalizers, meshv1.Finalizer)
	if err := operatorClient.Patch(ctx, p, client.MergeFrom(original)); err != nil {
		return err
	}
	owned := map[string]string{meshv1.AnnotationMeshProject: p.Name}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name: p.NamespaceName(), Annotations: owned,
		Labels: map[string]string{
			meshv1.LabelManagedBy: meshv1.ManagedByValue,
			meshv1.LabelCustomer:  string(p.Spec.CustomerIdentifier),
			meshv1.LabelProject:   string(p.Spec.ProjectIdentifier),
		},
	}}
	if err := operatorClient.Create(ctx, ns); err != nil {
		return err
	}
	for _, binding := range p.Spec.RoleBindings {
		if err := operatorClient.Create(ctx, &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{
				Name: replicator.RoleBindingName(binding.Role), Namespace: ns.Name, Annotations: owned,
				Labels: map[string]string{meshv1.LabelManagedBy: meshv1.ManagedByValue, meshv1.LabelRole: binding.Role},
			},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: binding.Role},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "mesh:" + string(binding.Users[0])}},
		}); err != nil {
			return err
		}
	}
	original = p.DeepCopy()
	p.Status.Namespace, p.Status.ObservedGeneration = ns.Name, p.Generation
	// A converged project's status, step conditions included, so that the
	// operator has nothing to write.
	for _, step := range [][2]string{
		{meshv1.LandingZoneReadyCondition, meshv1.ReasonLandingZoneResolved},
		{meshv1.NamespaceReadyCondition, meshv1.ReasonNamespaceReconciled},
		{meshv1.RoleBindingsReadyCondition, meshv1.ReasonRoleBindingsReconciled},
		{meshv1.BaselineReadyCondition, meshv1.ReasonBaselineReconciled},
	} {
		meta.SetStatusCondition(&p.Status.Conditions, metav1.Condition{
			Type: step[0], Status: metav1.ConditionTrue, ObservedGeneration: p.Generation, Reason: step[1],
		})
	}
	meta.SetStatusCondition(&p.Status.Conditions, metav1.Condition{
		Type: meshv1.ReadyCondition, Status: metav1.ConditionTrue, ObservedGeneration: p.Generation,
		Reason: meshv1.ReasonReconciled, Message: "Namespace " + ns.Name + " and its RoleBindings match the spec",
	})
	return operatorClient.Status().Patch(ctx, p, client.MergeFrom(original))
}

func parallel(b *testing.B, n int, do func(int) error) {
	jobs := make(chan int)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				if err := do(j); err != nil {
					errs <- err
				}
			}
		}()
	}
	for j := range n {
		jobs <- j
	}
	close(jobs)
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
}

// env is what both benchmarks start from: a control plane, the operator's
// ServiceAccount bound to the chart's default roles, its options, a client
// acting as it with its rate limits (direct) and a cluster-admin client.
type env struct {
	fw     *framework.Framework
	sa     framework.ServiceAccount
	opts   operator.Options
	direct client.Client
	admin  client.WithWatch
}

// startEnv starts the control plane (stopped when the benchmark ends).
func startEnv(b *testing.B, ctx context.Context) *env {
	ctrl.SetLogger(logr.Discard())
	fw, err := framework.Start()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = fw.Stop() })
	if err := fw.FillAggregatedClusterRoles(ctx); err != nil {
		b.Fatal(err)
	}
	sa, err := fw.CreateServiceAccount(ctx, "meshcloud", "meshfed-service",
		"config/rbac/replicator/role.yaml", "config/rbac/landingzones/role.yaml")
	if err != nil {
		b.Fatal(err)
	}
	opts := operator.DefaultOptions()
	opts.Components = []string{operator.ComponentReplicator}
	cfg := *sa.Config
	cfg.QPS, cfg.Burst = float32(opts.KubeAPIQPS), opts.KubeAPIBurst
	direct, err := client.New(&cfg, client.Options{Scheme: operator.Scheme})
	if err != nil {
		b.Fatal(err)
	}
	admin, err := client.NewWithWatch(fw.Config, client.Options{Scheme: operator.Scheme})
	if err != nil {
		b.Fatal(err)
	}
	return &env{fw: fw, sa: sa, opts: opts, direct: direct, admin: admin}
}

// watchReady counts MeshProjects whose name starts with prefix as they turn
// Ready, until n are.
func watchReady(b *testing.B, ctx context.Context, c client.WithWatch, prefix string, n int) (wait func()) {
	return watchUntil(b, ctx, c, &meshv1.MeshProjectList{}, nil, n, "projects did not become Ready",
		func(obj client.Object) (key string, counts, reached bool) {
			p, ok := obj.(*meshv1.MeshProject)
			if !ok || !strings.HasPrefix(p.Name, prefix) {
				return "", false, false
			}
			return p.Name, true, meta.IsStatusConditionTrue(p.Status.Conditions, meshv1.ReadyCondition)
		})
}

// watchUntil watches list (with opts) until n objects, by the key reached
// returns, are in the wanted state, and returns a function that waits for
// that (at most watchTimeout, then it fails with what). It watches rather than
// polls: polling a thousand objects would load the API server and slow down
// what is being measured. A watch without a resourceVersion starts with the
// current state, so a watch that ends early is simply opened again.
func watchUntil(b *testing.B, ctx context.Context, c client.WithWatch, list client.ObjectList, opts []client.ListOption, n int, what string,
	reached func(client.Object) (key string, counts, reached bool)) (wait func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		state := map[string]bool{}
		count := 0
		for ctx.Err() == nil {
			w, err := c.Watch(ctx, list, opts...)
			if err != nil {
				done <- err
				return
			}
			for ev := range w.ResultChan() {
				obj, ok := ev.Object.(client.Object)
				if !ok {
					continue
				}
				key, counts, ok := reached(obj)
				if !counts {
					continue
				}
				if was := state[key]; was != ok {
					if ok {
						count++
					} else {
						count--
					}
				}
				state[key] = ok
				if count == n {
					w.Stop()
					done <- nil
					return
				}
			}
			w.Stop()
		}
	}()
	return func() {
		defer cancel()
		select {
		case err := <-done:
			if err != nil {
				b.Fatal(err)
			}
		case <-time.After(watchTimeout):
			b.Fatalf("%s within %s", what, watchTimeout)
		}
	}
}

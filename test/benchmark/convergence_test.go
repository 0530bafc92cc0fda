// Package benchmark measures the operator against a real API server.
package benchmark

import (
	"context"
	"fmt"
	"os"
	"strconv"
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
	"github.com/meshcloud/meshstack-operator/internal/controller"
	"github.com/meshcloud/meshstack-operator/internal/operator"
	"github.com/meshcloud/meshstack-operator/test/framework"
)

const (
	projects = 300
	workers  = 10
)

var roles = []string{"admin", "edit", "view"}

// BenchmarkConvergence creates 300 MeshProjects with three roles each and
// times how long the operator (under its least-privilege identity, with its
// default flags) takes until all are Ready. As the yardstick of what the API
// server allows, it first times writing the same objects directly with as
// many parallel workers: per project a namespace, three RoleBindings, and
// two writes standing in for the MeshProject's creation and status update.
// Reported: seconds for each, operator/direct (1.0 is the API server's own
// limit for that identity), and the operator's write requests per project.
func BenchmarkConvergence(b *testing.B) {
	ctrl.SetLogger(logr.Discard())
	ctx := context.Background()
	fw, err := framework.Start()
	if err != nil {
		b.Fatal(err)
	}
	defer fw.Stop()
	if err := fw.FillAggregatedClusterRoles(ctx); err != nil {
		b.Fatal(err)
	}
	sa, err := fw.CreateServiceAccount(ctx, "meshcloud", "meshfed-service", "config/rbac/replicator/role.yaml")
	if err != nil {
		b.Fatal(err)
	}
	opts := operator.DefaultOptions()
	opts.Components = []string{operator.ComponentReplicator}
	if v := os.Getenv("BENCH_QPS"); v != "" {
		opts.KubeAPIQPS, _ = strconv.ParseFloat(v, 64)
	}
	running, err := framework.StartManager(sa.Config, opts)
	if err != nil {
		b.Fatal(err)
	}
	defer running.Stop()
	// The yardstick writes as the operator's own ServiceAccount, with its
	// rate limits, so both sides pass the same authentication and
	// authorization.
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

	var directTime, converge time.Duration
	writesBefore := running.Writes()
	for i := 0; b.Loop(); i++ {
		start := time.Now()
		parallel(b, projects, func(n int) error { return writeDirectly(ctx, admin, direct, fmt.Sprintf("d%dx%d", i, n)) })
		directTime += time.Since(start)

		wait := watchReady(b, ctx, admin, fmt.Sprintf("o%dx", i))
		start = time.Now()
		parallel(b, projects, func(n int) error { return admin.Create(ctx, meshProject(fmt.Sprintf("o%dx%d", i, n))) })
		wait()
		converge += time.Since(start)
	}
	b.ReportMetric(directTime.Seconds()/float64(b.N), "direct-s/op")
	b.ReportMetric(converge.Seconds()/float64(b.N), "operator-s/op")
	b.ReportMetric(converge.Seconds()/directTime.Seconds(), "operator/direct")
	// Writes include the Events the operator emits (one per change of access).
	b.ReportMetric(float64(running.Writes()-writesBefore)/float64(b.N*projects), "operator-writes/project")
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

// writeDirectly makes, for one project, the write of its user (a ConfigMap
// standing in for the MeshProject) and, as the operator's identity, the
// writes the operator needs: the namespace, three RoleBindings, and two
// namespace updates standing in for the finalizer and status writes.
func writeDirectly(ctx context.Context, user, c client.Client, customer string) error {
	input := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: customer, Namespace: metav1.NamespaceDefault}}
	if err := user.Create(ctx, input); err != nil {
		return err
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: customer + "-bench"}}
	if err := c.Create(ctx, ns); err != nil {
		return err
	}
	for _, role := range roles {
		if err := c.Create(ctx, &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: controller.RoleBindingName(role), Namespace: ns.Name},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "mesh:user-" + role}},
		}); err != nil {
			return err
		}
	}
	for _, mark := range []string{"finalizer", "status"} {
		ns.Labels = map[string]string{"bench": mark}
		if err := c.Update(ctx, ns); err != nil {
			return err
		}
	}
	return nil
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

// watchReady counts MeshProjects whose name starts with prefix as they turn
// Ready. It watches rather than polls: polling 300 objects would load the
// API server and slow down what is being measured.
func watchReady(b *testing.B, ctx context.Context, c client.WithWatch, prefix string) (wait func()) {
	w, err := c.Watch(ctx, &meshv1.MeshProjectList{})
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		ready := map[string]bool{}
		for ev := range w.ResultChan() {
			p, ok := ev.Object.(*meshv1.MeshProject)
			if !ok || !strings.HasPrefix(p.Name, prefix) {
				continue
			}
			if meta.IsStatusConditionTrue(p.Status.Conditions, controller.ConditionReady) {
				ready[p.Name] = true
			}
			if len(ready) == projects {
				return
			}
		}
	}()
	return func() {
		defer w.Stop()
		select {
		case <-done:
		case <-time.After(5 * time.Minute):
			b.Fatal("projects did not become Ready within 5 minutes")
		}
	}
}

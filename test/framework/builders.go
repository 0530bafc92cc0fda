package framework

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1 "github.com/meshcloud/meshstack-operator/api/v1alpha1"
)

// ProjectBuilder builds a MeshProject: the replicator's integration specs,
// the fault specs and the end-to-end specs all make theirs with it.
type ProjectBuilder struct{ p *meshv1.MeshProject }

// Project starts a MeshProject of the customer and project identifiers,
// named <customer>-<project> as meshStack names them, without role
// bindings.
func Project(customer, project string) *ProjectBuilder {
	return &ProjectBuilder{p: &meshv1.MeshProject{
		ObjectMeta: metav1.ObjectMeta{Name: customer + "-" + project},
		Spec: meshv1.MeshProjectSpec{
			CustomerIdentifier: meshv1.Identifier(customer),
			ProjectIdentifier:  meshv1.Identifier(project),
		},
	}}
}

// Named sets the object's name.
func (b *ProjectBuilder) Named(name string) *ProjectBuilder { b.p.Name = name; return b }

// Identifiers sets the customer and project identifiers (not the name).
func (b *ProjectBuilder) Identifiers(customer, project string) *ProjectBuilder {
	b.p.Spec.CustomerIdentifier, b.p.Spec.ProjectIdentifier = meshv1.Identifier(customer), meshv1.Identifier(project)
	return b
}

// binding is the project's binding of role, added when it has none.
func (b *ProjectBuilder) binding(role string) *meshv1.ProjectRoleBinding {
	for i := range b.p.Spec.RoleBindings {
		if b.p.Spec.RoleBindings[i].Role == role {
			return &b.p.Spec.RoleBindings[i]
		}
	}
	b.p.Spec.RoleBindings = append(b.p.Spec.RoleBindings, meshv1.ProjectRoleBinding{Role: role})
	return &b.p.Spec.RoleBindings[len(b.p.Spec.RoleBindings)-1]
}

// Users adds users to the role's binding (the role alone when none are
// given).
func (b *ProjectBuilder) Users(role string, users ...string) *ProjectBuilder {
	rb := b.binding(role)
	for _, u := range users {
		rb.Users = append(rb.Users, meshv1.SubjectName(u))
	}
	return b
}

// Groups adds groups to the role's binding.
func (b *ProjectBuilder) Groups(role string, groups ...string) *ProjectBuilder {
	rb := b.binding(role)
	for _, g := range groups {
		rb.Groups = append(rb.Groups, meshv1.SubjectName(g))
	}
	return b
}

// Tag sets a tag.
func (b *ProjectBuilder) Tag(k, v string) *ProjectBuilder {
	if b.p.Spec.Tags == nil {
		b.p.Spec.Tags = map[string]meshv1.TagValue{}
	}
	b.p.Spec.Tags[k] = meshv1.TagValue(v)
	return b
}

// Policy sets the deletion policy.
func (b *ProjectBuilder) Policy(p meshv1.DeletionPolicy) *ProjectBuilder {
	b.p.Spec.DeletionPolicy = p
	return b
}

// Zone puts the project into a landing zone.
func (b *ProjectBuilder) Zone(name string) *ProjectBuilder { b.p.Spec.LandingZone = name; return b }

// Quota sets the project's quota.
func (b *ProjectBuilder) Quota(quota corev1.ResourceList) *ProjectBuilder {
	b.p.Spec.Quota = quota
	return b
}

// Build returns a copy of the project built so far.
func (b *ProjectBuilder) Build() *meshv1.MeshProject { return b.p.DeepCopy() }

// Pod is a pod of one pause container with the resources and no
// ServiceAccount token, as the metering specs count them.
func Pod(namespace, name string, res corev1.ResourceRequirements) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: corev1.PodSpec{
			AutomountServiceAccountToken: ptr.To(false),
			Containers:                   []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10", Resources: res}},
		},
	}
}

// SetPodStatus does the kubelet's part for a created pod, which envtest
// does not run: it sets the pod's phase and, unless start is zero, its start
// time through the status subresource.
func SetPodStatus(ctx context.Context, c client.Client, pod *corev1.Pod, phase corev1.PodPhase, start time.Time) error {
	pod.Status.Phase = phase
	if !start.IsZero() {
		pod.Status.StartTime = &metav1.Time{Time: start}
	}
	return c.Status().Update(ctx, pod)
}

// CreateRunningPod creates the pod and sets it Running since start.
func CreateRunningPod(ctx context.Context, c client.Client, pod *corev1.Pod, start time.Time) error {
	if err := c.Create(ctx, pod); err != nil {
		return err
	}
	return SetPodStatus(ctx, c, pod, corev1.PodRunning, start)
}

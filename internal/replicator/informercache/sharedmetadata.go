package informercache

import (
	"maps"
	"slices"
	"strings"
	"sync"
	"unique"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1 "github.com/meshcloud/meshstack-operator/api/v1alpha1"
)

// maxSharedLabelSets bounds the label sets the cache shares. The operator's
// objects have a handful (its marks, per landing zone); the bound keeps
// objects with labels of their own from growing the table without end.
const maxSharedLabelSets = 1024

// maxInternedStrings bounds the strings the cache keeps a handle on: a
// handful per project (its name, its users and groups), and the names and
// keys all projects have in common. Like the owner marks, the table starts
// afresh when full.
const maxInternedStrings = 1 << 18

// maxSharedOwnerMarks bounds the ownership annotations the cache shares, one
// per project. The table forgets nothing on its own (the transform never
// learns that an object went away), so it starts afresh when full: objects
// keep the maps they have, and stale entries of deleted projects go.
const maxSharedOwnerMarks = 1 << 16

// sharedMetadata makes the objects in the cache share what they have in
// common instead of each holding its own copy: at 10,000 projects the
// cache holds about 70,000 objects whose metadata differs only in name,
// namespace, uid and resourceVersion. Strings that repeat (names such as
// meshproject-admin, namespaces, label and annotation keys and values,
// RoleBinding subjects and ClusterRoles) are interned; equal label maps of
// namespaced objects are one map; and the objects of one project, whose
// only annotation is their owner, share one annotation map (a map weighs
// about 340 bytes, and there were eight of them for each project). Sharing
// is safe because the cache hands out deep copies and event handlers only
// read (see the package comment).
type sharedMetadata struct {
	mu     sync.Mutex
	labels map[string]map[string]string
	// owners maps a project name to {meshcloud.io/meshproject: name}.
	owners map[string]map[string]string

	// handles keeps the interned strings known to package unique, which
	// forgets a string at the first garbage collection after its last
	// handle is gone, even while cached objects still hold the string
	// itself: without them, objects decoded after a collection (another
	// kind's informer, every update) get a copy of their own.
	// BenchmarkTransformHeap, 10,000 projects: 5,889 bytes per project
	// with the handles kept, 5,965 without them when all kinds are
	// decoded between two collections and 6,129 with a collection after
	// each kind; 7,030 without interning.
	handlesMu sync.Mutex
	handles   map[unique.Handle[string]]struct{}
}

func newSharedMetadata() *sharedMetadata {
	return &sharedMetadata{labels: map[string]map[string]string{}, owners: map[string]map[string]string{},
		handles: map[unique.Handle[string]]struct{}{}}
}

// share rewrites obj's metadata, a RoleBinding's subjects and role, and the
// strings of a MeshProject's spec and status, to use shared strings and
// maps.
func (s *sharedMetadata) share(obj metav1.Object) {
	if project, ok := obj.(*meshv1.MeshProject); ok {
		s.internProject(project)
	}
	if rb, ok := obj.(*rbacv1.RoleBinding); ok {
		rb.RoleRef = rbacv1.RoleRef{APIGroup: s.intern(rb.RoleRef.APIGroup), Kind: s.intern(rb.RoleRef.Kind), Name: s.intern(rb.RoleRef.Name)}
		for i := range rb.Subjects {
			subject := &rb.Subjects[i]
			subject.APIGroup, subject.Kind = s.intern(subject.APIGroup), s.intern(subject.Kind)
			subject.Name, subject.Namespace = s.intern(subject.Name), s.intern(subject.Namespace)
		}
	}
	obj.SetName(s.intern(obj.GetName()))
	obj.SetAnnotations(s.annotationSet(obj.GetAnnotations()))
	if obj.GetNamespace() == "" {
		// A namespace's labels include its own name: nothing to share.
		obj.SetLabels(s.internMap(obj.GetLabels()))
		return
	}
	obj.SetNamespace(s.intern(obj.GetNamespace()))
	obj.SetLabels(s.labelSet(obj.GetLabels()))
}

// labelSet returns the shared map equal to labels, which becomes the shared
// one if there is none yet and the table has room.
func (s *sharedMetadata) labelSet(labels map[string]string) map[string]string {
	if len(labels) == 0 {
		return labels
	}
	var key strings.Builder
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		key.WriteString(k)
		key.WriteByte('=')
		key.WriteString(labels[k])
		key.WriteByte(0) // neither keys nor values may contain it
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if shared, ok := s.labels[key.String()]; ok {
		return shared
	}
	labels = s.internMap(labels)
	if len(s.labels) < maxSharedLabelSets {
		s.labels[key.String()] = labels
	}
	return labels
}

// internProject interns what projects have in common: role, user and group
// names, the zone, the condition types and reasons; and the namespace,
// which the namespace's objects name too. Messages name the namespace, so
// they would only fill the intern table.
func (s *sharedMetadata) internProject(p *meshv1.MeshProject) {
	p.Spec.LandingZone = s.intern(p.Spec.LandingZone)
	for i := range p.Spec.RoleBindings {
		rb := &p.Spec.RoleBindings[i]
		rb.Role = s.intern(rb.Role)
		for j := range rb.Users {
			rb.Users[j] = meshv1.SubjectName(s.intern(string(rb.Users[j])))
		}
		for j := range rb.Groups {
			rb.Groups[j] = meshv1.SubjectName(s.intern(string(rb.Groups[j])))
		}
	}
	p.Status.Namespace, p.Status.LandingZone = s.intern(p.Status.Namespace), s.intern(p.Status.LandingZone)
	for i := range p.Status.Conditions {
		c := &p.Status.Conditions[i]
		c.Type, c.Reason = s.intern(c.Type), s.intern(c.Reason)
		c.Status = metav1.ConditionStatus(s.intern(string(c.Status)))
	}
}

// annotationSet returns the shared map equal to annotations when they are
// only the ownership mark, and an interned copy otherwise.
func (s *sharedMetadata) annotationSet(annotations map[string]string) map[string]string {
	owner, marked := annotations[meshv1.AnnotationMeshProject]
	if len(annotations) != 1 || !marked {
		return s.internMap(annotations)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if shared, ok := s.owners[owner]; ok {
		return shared
	}
	if len(s.owners) >= maxSharedOwnerMarks {
		clear(s.owners)
	}
	shared := s.internMap(annotations)
	s.owners[shared[meshv1.AnnotationMeshProject]] = shared
	return shared
}

// internMap returns a copy of m with interned keys and values.
func (s *sharedMetadata) internMap(m map[string]string) map[string]string {
	if len(m) == 0 {
		return m
	}
	interned := make(map[string]string, len(m))
	for k, v := range m {
		interned[s.intern(k)] = s.intern(v)
	}
	return interned
}

// intern returns the cache's copy of v, which becomes it if there is none.
func (s *sharedMetadata) intern(v string) string {
	if v == "" {
		return v
	}
	h := unique.Make(v)
	s.handlesMu.Lock()
	defer s.handlesMu.Unlock()
	if _, ok := s.handles[h]; !ok {
		if len(s.handles) >= maxInternedStrings {
			clear(s.handles)
		}
		s.handles[h] = struct{}{}
	}
	return h.Value()
}

package informercache

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// labelCachedSpecDigest holds, in the operator's cache only, the digest of
// the spec of a ResourceQuota, LimitRange or NetworkPolicy, whose spec the
// cache does not keep: at 10,000 projects their specs (maps of quantities)
// weighed about 30 MB of live heap. The operator compares digests and,
// when they differ, writes the object from its cached metadata and the
// wanted spec. The key is not a valid label key (it has spaces), so no
// object on the server can carry it, no tenant can forge it, and the API
// server would refuse a write that leaked it. It is a label rather than an
// annotation because the objects of one zone have equal labels, which the
// cache shares (see sharedMetadata), while their annotations name their
// projects.
const labelCachedSpecDigest = "meshcloud.io/spec digest in cache"

// specDigest is the SHA-256 of a spec's JSON (quantities in canonical
// form, map keys sorted), or "" when it cannot be encoded, which never
// matches.
func specDigest(spec any) string {
	data, err := json.Marshal(spec)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(data)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// keepSpecDigest replaces the spec of a cached baseline object with its
// digest and drops a ResourceQuota's status (usage, which the quota
// controller keeps changing and the operator never reads); it leaves
// objects of other kinds alone. It may see an object twice (informers may
// transform again what they already hold) and leaves a digested one as it
// is.
func keepSpecDigest(obj any) {
	var spec any
	switch o := obj.(type) {
	case *corev1.ResourceQuota:
		spec = &o.Spec
	case *corev1.LimitRange:
		spec = &o.Spec
	case *networkingv1.NetworkPolicy:
		spec = &o.Spec
	default:
		return
	}
	o := obj.(metav1.Object)
	if digestOnly(o) {
		return
	}
	setCachedDigest(o, specDigest(spec))
	switch o := obj.(type) {
	case *corev1.ResourceQuota:
		o.Spec, o.Status = corev1.ResourceQuotaSpec{}, corev1.ResourceQuotaStatus{}
	case *corev1.LimitRange:
		o.Spec = corev1.LimitRangeSpec{}
	case *networkingv1.NetworkPolicy:
		o.Spec = networkingv1.NetworkPolicySpec{}
	}
}

func setCachedDigest(obj metav1.Object, digest string) {
	labels := obj.GetLabels()
	if labels == nil {
		labels = map[string]string{}
	}
	labels[labelCachedSpecDigest] = digest
	obj.SetLabels(labels)
}

// CachedAsWanted reports whether have, an object from the cache that holds
// only its spec's digest, already has want's spec and marks.
func CachedAsWanted(have, want metav1.Object, wantSpec any) bool {
	digest, ok := have.GetLabels()[labelCachedSpecDigest]
	return ok && digest == specDigest(wantSpec) &&
		hasAll(have.GetLabels(), want.GetLabels()) && hasAll(have.GetAnnotations(), want.GetAnnotations())
}

// hasAll reports whether m has every entry of sub.
func hasAll(m, sub map[string]string) bool {
	for k, v := range sub {
		if have, ok := m[k]; !ok || have != v {
			return false
		}
	}
	return true
}

// DropSpecDigest removes the digest from a copy of a cached object that is
// about to be written, and reports whether it had one. The copy's labels
// are its own (the cache hands out deep copies), never the shared map.
func DropSpecDigest(obj metav1.Object) bool {
	labels := obj.GetLabels()
	if _, ok := labels[labelCachedSpecDigest]; !ok {
		return false
	}
	delete(labels, labelCachedSpecDigest)
	obj.SetLabels(labels)
	return true
}

// digestOnly reports whether obj came from the cache without its spec.
func digestOnly(obj metav1.Object) bool {
	_, ok := obj.GetLabels()[labelCachedSpecDigest]
	return ok
}

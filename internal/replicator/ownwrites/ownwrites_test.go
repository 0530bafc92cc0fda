package ownwrites

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/event"
)

func TestOwnWritesStartNoPass(t *testing.T) {
	quota := func(uid, rv string) *corev1.ResourceQuota {
		return &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{UID: types.UID(uid), ResourceVersion: rv}}
	}
	cases := []struct {
		name    string
		written *corev1.ResourceQuota // nil: the operator wrote nothing
		events  []event.UpdateEvent
		want    []bool // whether each event starts a pass
	}{
		{"someone else's change", nil,
			[]event.UpdateEvent{{ObjectNew: quota("a", "7")}}, []bool{true}},
		{"the operator's own write", quota("a", "7"),
			[]event.UpdateEvent{{ObjectNew: quota("a", "7")}}, []bool{false}},
		{"a change after the operator's write", quota("a", "7"),
			[]event.UpdateEvent{{ObjectNew: quota("a", "8")}}, []bool{true}},
		{"the same version again, once the write was seen", quota("a", "7"),
			[]event.UpdateEvent{{ObjectNew: quota("a", "7")}, {ObjectNew: quota("a", "7")}}, []bool{false, true}},
		{"another object", quota("a", "7"),
			[]event.UpdateEvent{{ObjectNew: quota("b", "7")}, {ObjectNew: quota("a", "7")}}, []bool{true, false}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := New()
			if tc.written != nil {
				recordingClient{writes: w}.record(tc.written, nil)
			}
			p := w.NotEchoes()
			for i, e := range tc.events {
				if got := p.Update(e); got != tc.want[i] {
					t.Errorf("event %d (%s %s): starts a pass %v, want %v", i, e.ObjectNew.GetUID(), e.ObjectNew.GetResourceVersion(), got, tc.want[i])
				}
			}
		})
	}
}

func TestOwnWritesKeepNothingOnceSeen(t *testing.T) {
	w := New()
	c := recordingClient{writes: w}
	created := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{UID: "ns", ResourceVersion: "1"}}
	c.record(created, nil)
	c.record(&corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{UID: "q", ResourceVersion: "2"}}, nil)
	// A failed write and a kind no event maps to a project are not kept.
	c.record(&corev1.LimitRange{ObjectMeta: metav1.ObjectMeta{UID: "l", ResourceVersion: "3"}}, errConflictForTest)
	c.record(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{UID: "c", ResourceVersion: "4"}}, nil)
	p := w.NotEchoes()
	if p.Create(event.CreateEvent{Object: created}) {
		t.Error("the event of the operator's own create starts a pass")
	}
	if !p.Delete(event.DeleteEvent{Object: &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{UID: "q", ResourceVersion: "2"}}}) {
		t.Error("a delete starts no pass")
	}
	if len(w.pending) != 0 {
		t.Errorf("writes kept after their events: %v", w.pending)
	}
}

var errConflictForTest = apierrors.NewConflict(schema.GroupResource{Resource: "limitranges"}, "l", nil)

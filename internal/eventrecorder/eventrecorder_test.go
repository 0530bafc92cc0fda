package eventrecorder

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/record"
)

func TestCoreEventRecorderKeepsReasonAndNote(t *testing.T) {
	fake := record.NewFakeRecorder(1)
	coreEventRecorder{fake}.Eventf(&corev1.Namespace{}, nil, corev1.EventTypeNormal, "AccessGranted", "Bind", "User %s gained role %s", "mesh:alice", "admin")
	if got, want := <-fake.Events, "Normal AccessGranted User mesh:alice gained role admin"; got != want {
		t.Errorf("event = %q, want %q", got, want)
	}
}

package metering

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// podsUntilCancelled answers as the API server would once the context is
// cancelled.
type podsUntilCancelled struct{ *fakePods }

func (p podsUntilCancelled) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return p.fakePods.List(ctx, list, opts...)
}

func TestListPagesHandsEveryPageInOrderOrFails(t *testing.T) {
	pods := make([]*corev1.Pod, 0, 7)
	for i := range 7 {
		pods = append(pods, newPod("ns", fmt.Sprintf("p%d", i)))
	}
	listFailure := errors.New("connection refused")
	cases := []struct {
		name      string
		failPage  map[int]error
		cancelAt  int // cancel the context when this page is handed over; -1 never
		wantNames []string
		wantErr   bool
	}{
		{"all pages", nil, -1, []string{"p0", "p1", "p2", "p3", "p4", "p5", "p6"}, false},
		{"a failed page ends the listing with its error", map[int]error{2: listFailure}, -1, []string{"p0", "p1", "p2", "p3"}, true},
		{"a cancelled listing is an error, never a short listing", nil, 0, nil, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			reader := podsUntilCancelled{&fakePods{pods: pods, failPage: tc.failPage}}
			var names []string
			page := 0
			err := listPages(ctx, reader, 2, func() client.ObjectList { return &corev1.PodList{} }, func(l client.ObjectList) {
				if page == tc.cancelAt {
					cancel()
				}
				page++
				for _, p := range l.(*corev1.PodList).Items {
					names = append(names, p.Name)
				}
			})
			if (err != nil) != tc.wantErr {
				t.Fatalf("error %v, want one: %v", err, tc.wantErr)
			}
			if tc.cancelAt >= 0 {
				return // how many pages arrive before the cancellation shows is not fixed
			}
			if diff := cmp.Diff(tc.wantNames, names); diff != "" {
				t.Errorf("pods handed over (-want +got):\n%s", diff)
			}
		})
	}
}

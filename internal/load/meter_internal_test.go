package load

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

func TestPercentile(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		var out []time.Duration
		for _, x := range v {
			out = append(out, time.Duration(x)*time.Millisecond)
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = 100 - i // descending: Percentile must sort
	}
	for _, tc := range []struct {
		name string
		in   []time.Duration
		p    float64
		want time.Duration
	}{
		{"empty", nil, 99, 0},
		{"one", ms(7), 50, 7 * time.Millisecond},
		{"median of four is the second", ms(4, 1, 3, 2), 50, 2 * time.Millisecond},
		{"p99 of 100 is the 99th", ms(hundred...), 99, 99 * time.Millisecond},
		{"p50 of 100 is the 50th", ms(hundred...), 50, 50 * time.Millisecond},
		{"p100 is the max", ms(hundred...), 100, 100 * time.Millisecond},
	} {
		if got := Percentile(tc.in, tc.p); got != tc.want {
			t.Errorf("%s: Percentile(p%v) = %s, want %s", tc.name, tc.p, got, tc.want)
		}
	}
}

// TestTimedSubtractsIO: a handler that spends 2 ms computing and then waits
// 40 ms on a slow server through a metered transport is recorded with the
// wait as I/O and only the computation as overhead.
func TestTimedSubtractsIO(t *testing.T) {
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		time.Sleep(40 * time.Millisecond)
		_, _ = w.Write([]byte("ok"))
	}))
	defer slow.Close()
	client := &http.Client{Transport: meteredTransport{base: http.DefaultTransport, kind: ioWeChat}}
	rec := &recorder{}
	h := rec.timed(func(ctx context.Context, e events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		for end := time.Now().Add(2 * time.Millisecond); time.Now().Before(end); {
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, slow.URL, nil)
		if err != nil {
			return events.APIGatewayV2HTTPResponse{}, err
		}
		resp, err := client.Do(req)
		if err != nil {
			return events.APIGatewayV2HTTPResponse{}, err
		}
		defer resp.Body.Close()
		if err := meteredSleep(ctx, 10*time.Millisecond); err != nil {
			return events.APIGatewayV2HTTPResponse{}, err
		}
		return events.APIGatewayV2HTTPResponse{StatusCode: resp.StatusCode}, nil
	})
	rec.start()
	if _, err := h(context.Background(), events.APIGatewayV2HTTPRequest{RouteKey: "GET /x"}); err != nil {
		t.Fatal(err)
	}
	// Outside a measured phase nothing is recorded.
	samples := rec.stop()
	if _, err := h(context.Background(), events.APIGatewayV2HTTPRequest{RouteKey: "GET /x"}); err != nil {
		t.Fatal(err)
	}
	if len(samples) != 1 || len(rec.stop()) != 0 {
		t.Fatalf("recorded %d samples in the phase, want 1 (and none after it)", len(samples))
	}
	s := samples[0]
	if s.Route != "GET /x" || s.Status != 200 || s.WxCalls != 1 || s.DDBCalls != 0 {
		t.Fatalf("sample %+v: want GET /x, 200, one WeChat call", s)
	}
	if s.WeChat < 40*time.Millisecond || s.Wait < 10*time.Millisecond {
		t.Fatalf("sample %+v: WeChat I/O %s (want >= 40ms), wait %s (want >= 10ms)", s, s.WeChat, s.Wait)
	}
	if s.Overhead() < 2*time.Millisecond || s.Overhead() > 30*time.Millisecond {
		t.Fatalf("overhead %s of %+v: want the 2 ms computation, not the 50 ms of waiting", s.Overhead(), s)
	}
}

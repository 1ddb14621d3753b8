// Package metrics writes CloudWatch Embedded Metric Format (EMF) lines: one
// JSON object per measurement on stdout, which Lambda ships to CloudWatch
// Logs and CloudWatch turns into metrics without any API call.
package metrics

import (
	"encoding/json"
	"io"
	"sync"
	"time"
)

// EMF writes EMF lines to w. The zero value discards.
type EMF struct {
	Namespace string
	W         io.Writer
	Now       func() time.Time
	mu        sync.Mutex
}

// Count records value (unit Count) of metric name with the given dimensions.
func (m *EMF) Count(name string, value float64, dims map[string]string) {
	if m == nil || m.W == nil {
		return
	}
	now := time.Now
	if m.Now != nil {
		now = m.Now
	}
	keys := make([]string, 0, len(dims))
	doc := map[string]any{name: value}
	for k, v := range dims {
		keys = append(keys, k)
		doc[k] = v
	}
	doc["_aws"] = map[string]any{
		"Timestamp": now().UnixMilli(),
		"CloudWatchMetrics": []any{map[string]any{
			"Namespace":  m.Namespace,
			"Dimensions": [][]string{keys},
			"Metrics":    []any{map[string]string{"Name": name, "Unit": "Count"}},
		}},
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	_, _ = m.W.Write(append(b, '\n'))
}

package wxpaysim

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
)

// handlerFunc serves one authenticated /v3/ route.
type handlerFunc func(ctx context.Context, c *call) (reply, error)

// route is one entry of the route table: METHOD + pattern, where a {name}
// segment matches any one non-empty path segment.
type route struct {
	method  string
	pattern string
	handle  handlerFunc
}

// call is what a handler gets: the authenticated merchant and the request.
type call struct {
	m      *merchant
	mchID  string
	params map[string]string
	query  url.Values
	body   []byte // verified, valid JSON or empty
	// requestSerial is the request's Wechatpay-Serial header.
	requestSerial string
}

// decode unmarshals the body into v; a failure is PARAM_ERROR.
func (c *call) decode(v any) error {
	if len(c.body) == 0 {
		return paramError("请求体为空 (empty request body)")
	}
	if err := json.Unmarshal(c.body, v); err != nil {
		return paramError("请求体格式错误 (body does not match the schema: %v)", err)
	}
	return nil
}

// reply is a handler's success answer; a nil body answers 204-style with
// no content.
type reply struct {
	status int
	body   any
	// raw, when set, is sent as is and unsigned, as WeChat Pay serves
	// /v3/billdownload/file (wechatpay-apiv3.md 6.2).
	raw *rawReply
}

// rawReply is a byte-stream answer.
type rawReply struct {
	contentType string
	data        []byte
}

// match finds the route for method and path (already decoded).
func (s *Sim) match(method, path string) (route, map[string]string, bool) {
	for _, rt := range s.routes {
		if rt.method != method {
			continue
		}
		if params, ok := matchPattern(rt.pattern, path); ok {
			return rt, params, true
		}
	}
	return route{}, nil, false
}

// matchPattern matches path against pattern segment by segment; {name}
// segments match any non-empty segment and are returned as parameters.
func matchPattern(pattern, path string) (map[string]string, bool) {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	pat := strings.Split(strings.Trim(pattern, "/"), "/")
	if len(pat) != len(segs) {
		return nil, false
	}
	params := map[string]string{}
	for i, p := range pat {
		if strings.HasPrefix(p, "{") && strings.HasSuffix(p, "}") {
			if segs[i] == "" {
				return nil, false
			}
			params[p[1:len(p)-1]] = segs[i]
			continue
		}
		if p != segs[i] {
			return nil, false
		}
	}
	return params, true
}

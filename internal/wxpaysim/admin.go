package wxpaysim

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// MerchantSpec is the JSON form of a MerchantConfig, used by POST
// /sim/merchants and the cmd/wxpaysim config file.
type MerchantSpec struct {
	MchID string `json:"mchid"`
	// CertSerial may be omitted when PublicKeyPEM is the certificate.
	CertSerial string `json:"cert_serial,omitempty"`
	// PublicKeyPEM is the merchant API certificate ("CERTIFICATE") or its
	// public key ("PUBLIC KEY" or "RSA PUBLIC KEY").
	PublicKeyPEM string   `json:"public_key_pem"`
	APIv3Key     string   `json:"apiv3_key"`
	AppIDs       []string `json:"appids"`
	ServiceIDs   []string `json:"service_ids,omitempty"`
	Mode         Mode     `json:"mode,omitempty"`
	NotifyURL    string   `json:"notify_url,omitempty"`
}

// Config parses the spec into a MerchantConfig (not yet validated: see
// AddMerchant).
func (sp MerchantSpec) Config() (MerchantConfig, error) {
	pub, serial, err := parsePublicKeyPEM([]byte(sp.PublicKeyPEM))
	if err != nil {
		return MerchantConfig{}, fmt.Errorf("merchant %s: %w", sp.MchID, err)
	}
	if sp.CertSerial == "" {
		sp.CertSerial = serial
	}
	return MerchantConfig{MchID: sp.MchID, CertSerial: sp.CertSerial, PublicKey: pub, APIv3Key: sp.APIv3Key,
		AppIDs: sp.AppIDs, ServiceIDs: sp.ServiceIDs, Mode: sp.Mode, NotifyURL: sp.NotifyURL}, nil
}

// parsePublicKeyPEM reads an RSA public key from a certificate or a public
// key PEM; serial is the certificate serial (upper-case hex) or "".
func parsePublicKeyPEM(b []byte) (*rsa.PublicKey, string, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, "", fmt.Errorf("%w: public_key_pem holds no PEM block", ErrInvalid)
	}
	var key any
	serial := ""
	switch blk.Type {
	case "CERTIFICATE":
		cert, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, "", fmt.Errorf("%w: certificate: %w", ErrInvalid, err)
		}
		key, serial = cert.PublicKey, fmt.Sprintf("%X", cert.SerialNumber.Bytes())
	case "PUBLIC KEY":
		k, err := x509.ParsePKIXPublicKey(blk.Bytes)
		if err != nil {
			return nil, "", fmt.Errorf("%w: public key: %w", ErrInvalid, err)
		}
		key = k
	case "RSA PUBLIC KEY":
		k, err := x509.ParsePKCS1PublicKey(blk.Bytes)
		if err != nil {
			return nil, "", fmt.Errorf("%w: public key: %w", ErrInvalid, err)
		}
		key = k
	default:
		return nil, "", fmt.Errorf("%w: PEM block %q (want CERTIFICATE or PUBLIC KEY)", ErrInvalid, blk.Type)
	}
	pub, ok := key.(*rsa.PublicKey)
	if !ok {
		return nil, "", fmt.Errorf("%w: the merchant key is not RSA", ErrInvalid)
	}
	return pub, serial, nil
}

// adminRoute is one admin endpoint.
type adminRoute struct {
	method, pattern, doc string
	handle               func(w http.ResponseWriter, r *http.Request, params map[string]string)
}

func (s *Sim) adminRoutes() []adminRoute {
	routes := []adminRoute{
		{http.MethodGet, "/sim", "this index", s.adminIndex},
		{http.MethodPost, "/sim/reset", "forget orders, faults, records, notifications (merchants and clock stay)", s.adminReset},
		{http.MethodGet, "/sim/info", "platform key ids and PEMs, sim time, merchants", s.adminInfo},
		{http.MethodPost, "/sim/merchants", "add a merchant {mchid,cert_serial,public_key_pem,apiv3_key,appids,service_ids,mode,notify_url}", s.adminAddMerchant},
		{http.MethodPatch, "/sim/merchants/{mchid}", "change a merchant {mode?,notify_url?}", s.adminPatchMerchant},
		{http.MethodGet, "/sim/faults", "faults still set", s.adminFaults},
		{http.MethodPost, "/sim/faults", "set a fault {mchid,path_prefix,kind,count,every,status,code,delay_ms}", s.adminSetFault},
		{http.MethodDelete, "/sim/faults", "clear every fault", s.adminClearFaults},
		{http.MethodGet, "/sim/requests", "every /v3/ request (?mchid= filters)", s.adminRequests},
		{http.MethodGet, "/sim/notifications", "every notification delivery attempt (?mchid=, ?id= filter)", s.adminDeliveries},
		{http.MethodPost, "/sim/notifications", "send a notification {mchid,url,event_type,original_type,summary,resource}", s.adminNotify},
		{http.MethodPost, "/sim/clock/advance", "move the sim clock {seconds}", s.adminAdvance},
		{http.MethodPost, "/sim/users/pay", "a user pays an order {mchid,out_trade_no,openid?,bank_type?,promotions?}", s.adminPay},
	}
	// Each product adds its user-side actions in its own file.
	for _, more := range [][]adminRoute{s.refundAdminRoutes(), s.payscoreAdminRoutes(), s.busifavorAdminRoutes(), s.paygiftAdminRoutes(), s.billAdminRoutes()} {
		routes = append(routes, more...)
	}
	return routes
}

// serveAdmin serves the unauthenticated admin API.
func (s *Sim) serveAdmin(w http.ResponseWriter, r *http.Request) {
	known := false
	for _, rt := range s.adminRoutes() {
		params, ok := matchPattern(rt.pattern, r.URL.Path)
		if !ok {
			continue
		}
		known = true
		if rt.method == r.Method {
			rt.handle(w, r, params)
			return
		}
	}
	if known {
		adminError(w, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", fmt.Sprintf("%s %s is not supported", r.Method, r.URL.Path))
		return
	}
	adminError(w, http.StatusNotFound, "NOT_FOUND", fmt.Sprintf("no admin endpoint %s (GET /sim/ lists them)", r.URL.Path))
}

func adminError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, errorBody{Code: code, Message: msg})
}

// adminFail maps a Go API error to an admin answer.
func adminFail(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, ErrInvalid):
		adminError(w, http.StatusBadRequest, "PARAM_ERROR", err.Error())
	case errors.Is(err, ErrUnknownMerchant):
		adminError(w, http.StatusNotFound, "MERCHANT_NOT_FOUND", err.Error())
	case errors.Is(err, ErrOrderNotFound):
		adminError(w, http.StatusNotFound, "ORDER_NOT_EXIST", err.Error())
	case errors.Is(err, ErrOrderState):
		adminError(w, http.StatusConflict, "INVALID_ORDER_STATE", err.Error())
	case errors.Is(err, ErrMerchantExists):
		adminError(w, http.StatusConflict, "MERCHANT_EXISTS", err.Error())
	case errors.Is(err, ErrClosed):
		adminError(w, http.StatusServiceUnavailable, "CLOSED", err.Error())
	default:
		adminError(w, http.StatusInternalServerError, "SYSTEM_ERROR", err.Error())
	}
}

// decodeAdmin reads a JSON body strictly (unknown fields are typos).
func decodeAdmin(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, maxBodyBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: body: %w", ErrInvalid, err)
	}
	return nil
}

func (s *Sim) adminIndex(w http.ResponseWriter, _ *http.Request, _ map[string]string) {
	type entry struct {
		Method string `json:"method"`
		Path   string `json:"path"`
		Doc    string `json:"doc"`
	}
	var out []entry
	for _, rt := range s.adminRoutes() {
		out = append(out, entry{rt.method, rt.pattern, rt.doc})
	}
	writeJSON(w, http.StatusOK, map[string]any{"endpoints": out})
}

func (s *Sim) adminReset(w http.ResponseWriter, _ *http.Request, _ map[string]string) {
	s.Reset()
	writeJSON(w, http.StatusOK, map[string]string{"status": "reset"})
}

type merchantView struct {
	MchID      string   `json:"mchid"`
	CertSerial string   `json:"cert_serial"`
	Mode       Mode     `json:"mode"`
	AppIDs     []string `json:"appids"`
	ServiceIDs []string `json:"service_ids"`
	NotifyURL  string   `json:"notify_url"`
}

func viewMerchant(c MerchantConfig) merchantView {
	return merchantView{MchID: c.MchID, CertSerial: c.CertSerial, Mode: c.Mode, AppIDs: c.AppIDs,
		ServiceIDs: c.ServiceIDs, NotifyURL: c.NotifyURL}
}

func (s *Sim) adminInfo(w http.ResponseWriter, _ *http.Request, _ map[string]string) {
	ms := []merchantView{}
	for _, c := range s.merchantConfigs() {
		ms = append(ms, viewMerchant(c))
	}
	p := s.platform
	writeJSON(w, http.StatusOK, map[string]any{
		"public_key_id":  p.PublicKeyID,
		"public_key_pem": string(p.PublicKeyPEM),
		"cert_serial":    p.CertSerial,
		"cert_pem":       string(p.CertPEM),
		"now":            formatTime(s.Now()),
		"merchants":      ms,
	})
}

func (s *Sim) adminAddMerchant(w http.ResponseWriter, r *http.Request, _ map[string]string) {
	var sp MerchantSpec
	if err := decodeAdmin(r, &sp); err != nil {
		adminFail(w, err)
		return
	}
	c, err := sp.Config()
	if err == nil {
		err = s.AddMerchant(c)
	}
	if err != nil {
		adminFail(w, err)
		return
	}
	m, err := s.merchant(c.MchID)
	if err != nil {
		adminFail(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, viewMerchant(m.config()))
}

func (s *Sim) adminPatchMerchant(w http.ResponseWriter, r *http.Request, params map[string]string) {
	var req struct {
		Mode      *Mode   `json:"mode"`
		NotifyURL *string `json:"notify_url"`
	}
	if err := decodeAdmin(r, &req); err != nil {
		adminFail(w, err)
		return
	}
	m, err := s.merchant(params["mchid"])
	if err != nil {
		adminFail(w, err)
		return
	}
	if req.Mode != nil {
		if err := s.SetMerchantMode(params["mchid"], *req.Mode); err != nil {
			adminFail(w, err)
			return
		}
	}
	if req.NotifyURL != nil {
		if *req.NotifyURL != "" {
			if ae := checkNotifyURL(*req.NotifyURL); ae != nil {
				adminError(w, http.StatusBadRequest, "PARAM_ERROR", ae.Message)
				return
			}
		}
		m.mu.Lock()
		m.cfg.NotifyURL = *req.NotifyURL
		m.mu.Unlock()
	}
	writeJSON(w, http.StatusOK, viewMerchant(m.config()))
}

// faultSpec is the JSON form of a Fault.
type faultSpec struct {
	MchID      string    `json:"mchid,omitempty"`
	PathPrefix string    `json:"path_prefix,omitempty"`
	Kind       FaultKind `json:"kind"`
	Count      int       `json:"count"`
	Every      int       `json:"every,omitempty"`
	Status     int       `json:"status,omitempty"`
	Code       string    `json:"code,omitempty"`
	DelayMS    int64     `json:"delay_ms,omitempty"`
}

func (s *Sim) writeFaults(w http.ResponseWriter, status int) {
	out := []faultSpec{}
	for _, f := range s.Faults() {
		out = append(out, faultSpec{MchID: f.MchID, PathPrefix: f.PathPrefix, Kind: f.Kind, Count: f.Count, Every: f.Every,
			Status: f.Status, Code: f.Code, DelayMS: f.Delay.Milliseconds()})
	}
	writeJSON(w, status, map[string]any{"faults": out})
}

func (s *Sim) adminFaults(w http.ResponseWriter, _ *http.Request, _ map[string]string) {
	s.writeFaults(w, http.StatusOK)
}

func (s *Sim) adminSetFault(w http.ResponseWriter, r *http.Request, _ map[string]string) {
	var sp faultSpec
	if err := decodeAdmin(r, &sp); err != nil {
		adminFail(w, err)
		return
	}
	if !sp.Kind.Valid() {
		adminError(w, http.StatusBadRequest, "PARAM_ERROR", fmt.Sprintf("unknown fault kind %q (want one of %v)", sp.Kind, FaultKinds()))
		return
	}
	if sp.Count < 0 || sp.Every < 0 || sp.DelayMS < 0 || sp.Status < 0 || sp.Status > 599 {
		adminError(w, http.StatusBadRequest, "PARAM_ERROR", "count, every, delay_ms and status must be non-negative (status < 600)")
		return
	}
	s.SetFault(Fault{MchID: sp.MchID, PathPrefix: sp.PathPrefix, Kind: sp.Kind, Count: sp.Count, Every: sp.Every, Status: sp.Status,
		Code: sp.Code, Delay: time.Duration(sp.DelayMS) * time.Millisecond})
	s.writeFaults(w, http.StatusCreated)
}

func (s *Sim) adminClearFaults(w http.ResponseWriter, _ *http.Request, _ map[string]string) {
	s.ClearFaults()
	s.writeFaults(w, http.StatusOK)
}

type requestView struct {
	Time         string      `json:"time"`
	Method       string      `json:"method"`
	Path         string      `json:"path"`
	MchID        string      `json:"mchid"`
	Status       int         `json:"status"`
	Code         string      `json:"code,omitempty"`
	Body         string      `json:"body"`
	ResponseBody string      `json:"response_body"`
	RequestID    string      `json:"request_id"`
	Faults       []FaultKind `json:"faults,omitempty"`
}

func (s *Sim) adminRequests(w http.ResponseWriter, r *http.Request, _ map[string]string) {
	mch := r.URL.Query().Get("mchid")
	out := []requestView{}
	for _, rec := range s.Requests() {
		if mch != "" && rec.MchID != mch {
			continue
		}
		out = append(out, requestView{Time: formatTime(rec.Time), Method: rec.Method, Path: rec.Path, MchID: rec.MchID,
			Status: rec.Status, Code: rec.Code, Body: string(rec.Body), ResponseBody: string(rec.ResponseBody),
			RequestID: rec.RequestID, Faults: rec.Faults})
	}
	writeJSON(w, http.StatusOK, map[string]any{"requests": out})
}

type deliveryView struct {
	NotificationID string      `json:"notification_id"`
	MchID          string      `json:"mchid"`
	EventType      string      `json:"event_type"`
	URL            string      `json:"url"`
	Attempt        int         `json:"attempt"`
	Copy           int         `json:"copy"`
	Duplicate      bool        `json:"duplicate"`
	Faults         []FaultKind `json:"faults,omitempty"`
	Status         int         `json:"status"`
	Error          string      `json:"error,omitempty"`
	Acked          bool        `json:"acked"`
	Time           string      `json:"time"`
	ElapsedMS      int64       `json:"elapsed_ms"`
	Timestamp      string      `json:"timestamp"`
	Serial         string      `json:"serial"`
}

func (s *Sim) adminDeliveries(w http.ResponseWriter, r *http.Request, _ map[string]string) {
	mch, id := r.URL.Query().Get("mchid"), r.URL.Query().Get("id")
	out := []deliveryView{}
	for _, d := range s.Deliveries() {
		if (mch != "" && d.MchID != mch) || (id != "" && d.NotificationID != id) {
			continue
		}
		v := deliveryView{NotificationID: d.NotificationID, MchID: d.MchID, EventType: d.EventType, URL: d.URL,
			Attempt: d.Attempt, Copy: d.Copy, Duplicate: d.Duplicate, Faults: d.Faults, Status: d.Status, Error: d.Err,
			Acked: d.Acked, ElapsedMS: d.Elapsed.Milliseconds(), Timestamp: d.Timestamp, Serial: d.Serial}
		if !d.Time.IsZero() {
			v.Time = formatTime(d.Time)
		}
		out = append(out, v)
	}
	writeJSON(w, http.StatusOK, map[string]any{"notifications": out})
}

func (s *Sim) adminNotify(w http.ResponseWriter, r *http.Request, _ map[string]string) {
	var req struct {
		MchID          string          `json:"mchid"`
		URL            string          `json:"url"`
		EventType      string          `json:"event_type"`
		ResourceType   string          `json:"resource_type"`
		OriginalType   string          `json:"original_type"`
		Summary        string          `json:"summary"`
		AssociatedData string          `json:"associated_data"`
		Resource       json.RawMessage `json:"resource"`
	}
	if err := decodeAdmin(r, &req); err != nil {
		adminFail(w, err)
		return
	}
	var obj map[string]any
	if err := json.Unmarshal(req.Resource, &obj); err != nil || obj == nil {
		adminError(w, http.StatusBadRequest, "PARAM_ERROR", "resource must be a JSON object (the plaintext the simulator encrypts)")
		return
	}
	plain, err := canonicalResource(req.Resource)
	if err != nil {
		adminFail(w, err)
		return
	}
	id, err := s.Notify(r.Context(), Notification{MchID: req.MchID, URL: req.URL, EventType: req.EventType,
		ResourceType: req.ResourceType, OriginalType: req.OriginalType, Summary: req.Summary,
		AssociatedData: req.AssociatedData, Plaintext: plain})
	if err != nil {
		adminFail(w, err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"id": id})
}

// canonicalResource compacts the resource JSON, keeping its key order.
func canonicalResource(raw json.RawMessage) ([]byte, error) {
	b, err := json.Marshal(raw) // a RawMessage is compacted as it is marshalled
	if err != nil {
		return nil, fmt.Errorf("%w: resource: %w", ErrInvalid, err)
	}
	return b, nil
}

func (s *Sim) adminAdvance(w http.ResponseWriter, r *http.Request, _ map[string]string) {
	var req struct {
		Seconds *float64 `json:"seconds"`
	}
	if err := decodeAdmin(r, &req); err != nil {
		adminFail(w, err)
		return
	}
	if req.Seconds == nil {
		adminError(w, http.StatusBadRequest, "PARAM_ERROR", `body must be {"seconds": N}`)
		return
	}
	s.Advance(time.Duration(*req.Seconds * float64(time.Second)))
	writeJSON(w, http.StatusOK, map[string]string{"now": formatTime(s.Now())})
}

func (s *Sim) adminPay(w http.ResponseWriter, r *http.Request, _ map[string]string) {
	var p Payment
	if err := decodeAdmin(r, &p); err != nil {
		adminFail(w, err)
		return
	}
	res, err := s.PayOrder(r.Context(), p)
	if err != nil {
		adminFail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

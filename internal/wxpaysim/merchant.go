package wxpaysim

import (
	"crypto/rsa"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/wxpay-serverless/wxpay-serverless/internal/testkeys"
)

// Mode is how WeChat Pay signs for a merchant.
type Mode string

// Modes.
const (
	// ModePublicKey: the WeChat Pay public key (PUB_KEY_ID_...) signs
	// responses and notifications; /v3/certificates has nothing (404). New
	// merchants only have this.
	ModePublicKey Mode = "public_key"
	// ModeCertificate: the platform certificate signs everything (legacy).
	ModeCertificate Mode = "certificate"
	// ModeMixed is the gray switch: responses follow the request's
	// Wechatpay-Serial (the public key id selects the public key, anything
	// else the certificate); notifications use the public key.
	ModeMixed Mode = "mixed"
)

func (m Mode) valid() bool {
	return m == ModePublicKey || m == ModeCertificate || m == ModeMixed
}

// MerchantConfig registers a merchant with the simulator.
type MerchantConfig struct {
	MchID string
	// CertSerial is the merchant API certificate serial requests must name.
	CertSerial string
	// PublicKey is the merchant API certificate public key; it verifies requests.
	PublicKey *rsa.PublicKey
	// APIv3Key (32 bytes) seals notification and certificate resources.
	APIv3Key string
	// AppIDs may be used in orders.
	AppIDs []string
	// ServiceIDs are the merchant's Pay Score service ids.
	ServiceIDs []string
	// Mode selects the signing key; "" means ModePublicKey.
	Mode Mode
	// NotifyURL is used when a request carries no notify_url.
	NotifyURL string
}

// MerchantFromTestKeys builds the config of a testkeys merchant.
func MerchantFromTestKeys(m *testkeys.Merchant, mode Mode, notifyURL string) MerchantConfig {
	return MerchantConfig{
		MchID:      m.MchID,
		CertSerial: m.CertSerial,
		PublicKey:  &m.Key.PublicKey,
		APIv3Key:   m.APIv3Key,
		AppIDs:     []string{m.AppID},
		ServiceIDs: []string{m.ServiceID},
		Mode:       mode,
		NotifyURL:  notifyURL,
	}
}

func (c MerchantConfig) validate() error {
	switch {
	case c.MchID == "":
		return fmt.Errorf("%w: merchant needs an mchid", ErrInvalid)
	case c.CertSerial == "":
		return fmt.Errorf("%w: merchant %s needs cert_serial", ErrInvalid, c.MchID)
	case c.PublicKey == nil:
		return fmt.Errorf("%w: merchant %s needs the API certificate public key", ErrInvalid, c.MchID)
	case len(c.APIv3Key) != 32:
		return fmt.Errorf("%w: merchant %s: the APIv3 key must be 32 bytes, got %d", ErrInvalid, c.MchID, len(c.APIv3Key))
	case !c.Mode.valid():
		return fmt.Errorf("%w: merchant %s: mode %q (want public_key, certificate or mixed)", ErrInvalid, c.MchID, c.Mode)
	}
	if c.NotifyURL != "" {
		if err := checkNotifyURL(c.NotifyURL); err != nil {
			return fmt.Errorf("%w: merchant %s: %s", ErrInvalid, c.MchID, err.Message)
		}
	}
	return nil
}

func (c MerchantConfig) equal(o MerchantConfig) bool {
	return c.MchID == o.MchID && c.CertSerial == o.CertSerial && c.PublicKey.Equal(o.PublicKey) &&
		c.APIv3Key == o.APIv3Key && slices.Equal(c.AppIDs, o.AppIDs) && slices.Equal(c.ServiceIDs, o.ServiceIDs) &&
		c.Mode == o.Mode && c.NotifyURL == o.NotifyURL
}

// merchant is one merchant's config and business state.
type merchant struct {
	mu  sync.Mutex
	cfg MerchantConfig

	// Payments (payments.go).
	orders map[string]*order // by out_trade_no
	byTxn  map[string]*order // by transaction_id

	// Merchant coupons and pay-gift activities (busifavor.go, paygift.go).
	busifavor *busifavorState
	paygift   *paygiftState
}

func (m *merchant) resetState() {
	m.orders = make(map[string]*order)
	m.byTxn = make(map[string]*order)
	m.busifavor = m.busifavor.reset() // keeps the plugin APIv2 key (merchant config)
	m.paygift = newPaygiftState()
}

// config returns a copy of the merchant's current config.
func (m *merchant) config() MerchantConfig {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cfg
}

// AddMerchant registers a merchant. Adding the same config again is a
// no-op; a different config under a registered mchid fails with
// ErrMerchantExists.
func (s *Sim) AddMerchant(c MerchantConfig) error {
	if c.Mode == "" {
		c.Mode = ModePublicKey
	}
	if err := c.validate(); err != nil {
		return err
	}
	c.AppIDs = slices.Clone(c.AppIDs)
	c.ServiceIDs = slices.Clone(c.ServiceIDs)
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.merchants[c.MchID]; ok {
		if old.config().equal(c) {
			return nil
		}
		return fmt.Errorf("%w: %s", ErrMerchantExists, c.MchID)
	}
	m := &merchant{cfg: c}
	m.resetState()
	s.merchants[c.MchID] = m
	return nil
}

// SetMerchantMode switches a merchant's signing mode (the certificate to
// public key gray switch).
func (s *Sim) SetMerchantMode(mchID string, mode Mode) error {
	if !mode.valid() {
		return fmt.Errorf("%w: mode %q (want public_key, certificate or mixed)", ErrInvalid, mode)
	}
	m, err := s.merchant(mchID)
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.cfg.Mode = mode
	m.mu.Unlock()
	return nil
}

// merchant returns the registered merchant mchID.
func (s *Sim) merchant(mchID string) (*merchant, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.merchants[mchID]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownMerchant, mchID)
	}
	return m, nil
}

// merchantConfigs returns every merchant's config, sorted by mchid.
func (s *Sim) merchantConfigs() []MerchantConfig {
	s.mu.Lock()
	ms := make([]*merchant, 0, len(s.merchants))
	for _, m := range s.merchants {
		ms = append(ms, m)
	}
	s.mu.Unlock()
	out := make([]MerchantConfig, 0, len(ms))
	for _, m := range ms {
		out = append(out, m.config())
	}
	slices.SortFunc(out, func(a, b MerchantConfig) int { return strings.Compare(a.MchID, b.MchID) })
	return out
}

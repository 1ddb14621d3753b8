// Package secrets loads WeChat Pay merchant credentials from AWS Secrets
// Manager (or a local file), validates them and caches them for the life of a
// Lambda execution environment.
//
// # Secret format
//
// The secret is one JSON document stored as the SecretString (SecretBinary is
// accepted as a fallback). Unknown fields are rejected.
//
//	{
//	  "mchid": "1900000001",                       // required, digits
//	  "merchant_cert_serial": "5157F09EFDC096DE15EBE81A47057A72XXXXXXXX", // required, hex serial of the merchant API certificate
//	  "merchant_private_key": "-----BEGIN PRIVATE KEY-----\n...",          // required, PEM, PKCS#8 or PKCS#1 RSA (>= 2048 bits)
//	  "apiv3_key": "32 ASCII bytes",                                       // required, exactly 32 bytes
//	  "apiv2_key": "32 bytes",                                             // optional (mini-program coupon plugin HMAC-SHA256 signing)
//	  "wechatpay_public_key_id": "PUB_KEY_ID_0114232134912410000000000000", // optional; must start with PUB_KEY_ID_
//	  "wechatpay_public_key": "-----BEGIN PUBLIC KEY-----\n...",           // required together with the id
//	  "platform_certificates": ["-----BEGIN CERTIFICATE-----\n..."],        // optional list of WeChat Pay platform certificates
//	  "appids": ["wxd678efh567hg6787"],                                     // required, >= 1
//	  "payscore_service_id": "500001"                                       // optional
//	}
//
// At least one verification key source is required: the WeChat Pay public
// key (wechatpay_public_key_id together with wechatpay_public_key) or at
// least one platform certificate. The verification [Mode] is derived from
// what is present: [ModePublicKey] (public key only), [ModeCertificate]
// (platform certificates only) or [ModeMixed] (both, typically while
// migrating from platform certificates to the public key).
//
// # Usage
//
//	sm := secretsmanager.NewFromConfig(cfg)
//	cache := secrets.NewCache(
//		secrets.NewSecretsManagerSource(sm, os.Getenv("SECRET_ID")),
//		secrets.CacheOptions{Logger: logger},
//	)
//	creds, err := cache.Get(ctx)
//	...
//	key, err := cache.VerificationKey(ctx, r.Header.Get("Wechatpay-Serial"))
//
// # Secrecy
//
// Secret values never appear in errors or logs produced by this package.
// [Credentials] redacts its keys when formatted with fmt (%v, %+v, %#v, %s),
// encoded with encoding/json or logged with log/slog; only identifiers
// (mchid, serials, public key id, appids) and metadata are shown. Validation
// errors ([FieldError]) name the offending field and the reason, never the
// value.
package secrets

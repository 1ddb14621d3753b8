package testkeys_test
import ("testing";"github.com/wxpay-serverless/wxpay-serverless/internal/testkeys";"github.com/wxpay-serverless/wxpay-serverless/shared/secrets")
func TestSecretParses(t *testing.T){
 m,err:=testkeys.NewMerchant("1900000001"); if err!=nil{t.Fatal(err)}
 p,err:=testkeys.NewPlatform(); if err!=nil{t.Fatal(err)}
 for _, o := range []testkeys.SecretOptions{{PublicKey:true},{Certificates:true},{PublicKey:true,Certificates:true}} {
  b,err:=testkeys.SecretJSON(m,p,o); if err!=nil{t.Fatal(err)}
  c,err:=secrets.Parse(b); if err!=nil{t.Fatalf("%+v: %v",o,err)}
  if _,ok:=c.VerificationKey(p.PublicKeyID); ok!=o.PublicKey {t.Fatalf("pubkey lookup %v",ok)}
  if _,ok:=c.VerificationKey(p.CertSerial); ok!=o.Certificates {t.Fatalf("cert lookup %v", ok)}
  t.Log(c.Mode)
 }
}

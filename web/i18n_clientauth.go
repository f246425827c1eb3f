package web

// deClientAuth is German for the app form's client authentication fields
// (private_key_jwt, client_secret_jwt) and the account rules' refusals of
// them.
var deClientAuth = map[string]string{
	"Client authentication (token_endpoint_auth_method)":                                                       "Client-Authentifizierung (token_endpoint_auth_method)",
	"The secret, by HTTP Basic or in the form (default)":                                                       "Das Secret, per HTTP Basic oder im Formular (Standard)",
	"The app's public keys for private_key_jwt (a JWK Set in JSON)":                                            "Öffentliche Schlüssel der App für private_key_jwt (ein JWK Set in JSON)",
	"Or where the app publishes them (jwks_uri)":                                                               "Oder wo die App sie veröffentlicht (jwks_uri)",
	"A public client has no credentials: use none.":                                                            "Ein öffentlicher Client hat keine Zugangsdaten: wählen Sie none.",
	"none is for public clients only.":                                                                         "none gibt es nur für öffentliche Clients.",
	"Give the app's keys inline (jwks) or by URL (jwks_uri), not both.":                                        "Geben Sie die Schlüssel der App direkt (jwks) oder per URL (jwks_uri) an, nicht beides.",
	"private_key_jwt needs the app's public keys: jwks or jwks_uri.":                                           "private_key_jwt braucht die öffentlichen Schlüssel der App: jwks oder jwks_uri.",
	"Signed request objects need the app's keys: jwks or jwks_uri (or client_secret_jwt, signing with HS256).": "Signierte Request-Objekte brauchen die Schlüssel der App: jwks oder jwks_uri (oder client_secret_jwt, signiert mit HS256).",
	"The key set holds no key.":                                                                                "Das Key Set enthält keinen Schlüssel.",
	"The key set is not valid JSON.":                                                                           "Das Key Set ist kein gültiges JSON.",
}

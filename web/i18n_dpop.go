package web

// deDPoP is German for the app form's DPoP fields (RFC 9449).
var deDPoP = map[string]string{
	"DPoP proofs required with every token request (dpop_bound_access_tokens)": "DPoP-Nachweise bei jeder Token-Anfrage verlangen (dpop_bound_access_tokens)",
	"DPoP proofs must carry the server's nonce":                                "DPoP-Nachweise müssen die Nonce des Servers enthalten",
}

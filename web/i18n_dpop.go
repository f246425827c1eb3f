package web

// deDPoP is German for the app form's DPoP fields (RFC 9449).
var deDPoP = map[string]string{
	"DPoP proofs required with every token request (dpop_bound_access_tokens)":            "DPoP-Nachweise bei jeder Token-Anfrage verlangen (dpop_bound_access_tokens)",
	"DPoP proofs must carry the server's nonce":                                           "DPoP-Nachweise müssen die Nonce des Servers enthalten",
	"Authorization requests only through the pushed authorization request endpoint (PAR)": "Autorisierungsanfragen nur über den Endpunkt für Pushed Authorization Requests (PAR)",
	"Authorization requests only as signed request objects (needs the app's keys)":        "Autorisierungsanfragen nur als signierte Request-Objekte (braucht die Schlüssel der App)",
}

package web

// deFeatures is German for the refusals of app settings whose [oauth]
// feature is off (account/features.go), and for the notes of the console's
// app form on their controls (templates/admin_app.html).
var deFeatures = map[string]string{
	"The device code grant is off on this server ([oauth] device_flow in config.toml).":                                                                             "Der Device-Code-Grant ist auf diesem Server ausgeschaltet ([oauth] device_flow in config.toml).",
	"The token exchange grant is off on this server ([oauth] token_exchange in config.toml).":                                                                       "Der Token-Exchange-Grant ist auf diesem Server ausgeschaltet ([oauth] token_exchange in config.toml).",
	"Pushed authorization requests are off on this server ([oauth] pushed_authorization_requests in config.toml).":                                                  "Pushed Authorization Requests sind auf diesem Server ausgeschaltet ([oauth] pushed_authorization_requests in config.toml).",
	"Request objects are off on this server ([oauth] request_objects in config.toml).":                                                                              "Request-Objekte sind auf diesem Server ausgeschaltet ([oauth] request_objects in config.toml).",
	"DPoP is off on this server ([oauth] dpop in config.toml).":                                                                                                     "DPoP ist auf diesem Server ausgeschaltet ([oauth] dpop in config.toml).",
	"Pairwise subject identifiers are off on this server ([oauth] pairwise_subjects in config.toml).":                                                               "Paarweise Subjekt-Kennungen sind auf diesem Server ausgeschaltet ([oauth] pairwise_subjects in config.toml).",
	"Turned off in the server configuration ([oauth] %s in config.toml).":                                                                                           "In der Serverkonfiguration ausgeschaltet ([oauth] %s in config.toml).",
	"Turned off in the server configuration ([oauth] %s in config.toml). This app had the setting before and keeps it; once you remove it, it cannot be set again.": "In der Serverkonfiguration ausgeschaltet ([oauth] %s in config.toml). Diese App hatte die Einstellung schon vorher und behält sie; wenn Sie sie entfernen, lässt sie sich nicht wieder setzen.",
}

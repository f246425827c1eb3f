package web

// deConsoleDeliveries is German for the console's deliveries page (the
// outbox) and the rules behind it.
var deConsoleDeliveries = map[string]string{
	"Deliveries": "Zustellungen",
	"What Keyport sends out (emails, webhook calls, logouts to apps) waits here until the receiver accepts it, and is retried with growing pauses for a day. Messages that failed for good are kept for 30 days; try one again once its cause is fixed.": "Was Keyport verschickt (E-Mails, Webhook-Aufrufe, Abmeldungen an Apps), wartet hier, bis der Empfänger es annimmt, und wird einen Tag lang mit wachsenden Pausen erneut versucht. Endgültig fehlgeschlagene Nachrichten werden 30 Tage aufbewahrt; versuchen Sie eine erneut, sobald ihre Ursache behoben ist.",
	"Failed":                        "Fehlgeschlagen",
	"Pending":                       "Ausstehend",
	"Delivered":                     "Zugestellt",
	"Kind":                          "Art",
	"Attempts":                      "Versuche",
	"Last error":                    "Letzter Fehler",
	"Next attempt":                  "Nächster Versuch",
	"Ended":                         "Beendet",
	"until":                         "bis",
	"Try again":                     "Erneut versuchen",
	"Older messages":                "Ältere Nachrichten",
	"No delivery has failed.":       "Keine Zustellung ist fehlgeschlagen.",
	"Nothing is waiting to go out.": "Nichts wartet auf den Versand.",
	"The delivery is pending again and goes out shortly.": "Die Zustellung ist wieder ausstehend und wird in Kürze verschickt.",
	"Only a failed delivery can be tried again.":          "Nur eine fehlgeschlagene Zustellung kann erneut versucht werden.",
	"There is no such delivery.":                          "Diese Zustellung gibt es nicht.",
	"The state must be pending, delivered or failed.":     "Der Zustand muss pending, delivered oder failed sein.",
	"The kind is not valid.":                              "Die Art ist nicht gültig.",
	"More than %d messages could not be delivered.":       "Mehr als %d Nachrichten konnten nicht zugestellt werden.",
	"Messages that could not be delivered: %d.":           "Nachrichten, die nicht zugestellt werden konnten: %d.",
	"See the deliveries":                                  "Zu den Zustellungen",
}

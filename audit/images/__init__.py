"""Reading the pictures: QR codes decoded and classified, text read by OCR and scanned.

``qr`` decodes and classifies QR payloads, ``ocr`` reads text lines, ``read`` turns one image
into findings, ``stage`` runs that over the archive's images after the pull.

Importing the package loads nothing: ``audit inspect`` reads images without a database.
"""

QR_RULE = "qr."  # prefixes of the rules of image findings, so they are told from text ones
OCR_RULE = "ocr."

"""Reading the pictures: QR codes decoded and classified, text read by OCR and scanned.

``qr`` decodes and classifies QR payloads, ``ocr`` reads text lines, ``read`` turns one image
into findings, ``refs`` says which pictures a message carries (image, mixed, chat record),
``stage`` runs that over the archive's images after the pull, ``draw`` marks the findings'
boxes on a picture for a reader (hiding their content when personal data is masked).

Importing the package loads nothing: ``audit inspect`` reads images without a database.
"""

Box = tuple[int, int, int, int]  # left, top, right, bottom in pixels
QR_RULE = "qr."  # prefixes of the rules of image findings, so they are told from text ones
OCR_RULE = "ocr."


def is_image_rule(rule: str) -> bool:
    """A finding on a picture (its offsets index the text read there, not the message's)."""
    return rule.startswith((QR_RULE, OCR_RULE))


class ImageUnreadable(ValueError):
    """The bytes are not an image that can be decoded."""

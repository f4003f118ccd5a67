"""Draw examples/example.png, the image the README's first command upscales.

Made entirely by this script (no photograph, no third-party content), so the
project owns it: a small synthetic landscape with smooth gradients, hard edges,
thin lines, fine stripes and text -- the kinds of detail super-resolution
treats differently. Drawn at 480x320 and shrunk 2x with MATLAB-style bicubic
(``srzoo.evaluate.metrics.imresize``) so it looks like an ordinary low-resolution image.

    python examples/make_example.py          # rewrites examples/example.png
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from srzoo.evaluate.metrics import imresize

W, H = 480, 320


def draw() -> np.ndarray:
    y = np.linspace(0.0, 1.0, H)[:, None, None]
    sky_top, sky_low = np.array([170, 110, 40.0]), np.array([235, 210, 170.0])  # BGR
    img = (sky_top * (1 - y) + sky_low * y) * np.ones((1, W, 1))
    img = img.astype(np.uint8)
    cv2.circle(img, (380, 70), 34, (90, 200, 250), -1, cv2.LINE_AA)           # sun
    far = np.array([[0, 200], [70, 130], [150, 185], [240, 110], [330, 175], [420, 125],
                    [480, 160], [480, 320], [0, 320]], np.int32)
    cv2.fillPoly(img, [far], (120, 110, 95), cv2.LINE_AA)                     # far hills
    near = np.array([[0, 250], [120, 205], [260, 240], [380, 200], [480, 230], [480, 320],
                     [0, 320]], np.int32)
    cv2.fillPoly(img, [near], (60, 130, 70), cv2.LINE_AA)                     # meadow
    # a house: wall, roof, door, windows with fine bars
    cv2.rectangle(img, (60, 200), (170, 280), (170, 200, 225), -1)
    cv2.fillPoly(img, [np.array([[50, 202], [115, 150], [180, 202]], np.int32)], (40, 40, 150),
                 cv2.LINE_AA)
    cv2.rectangle(img, (100, 235), (128, 280), (40, 70, 110), -1)
    for x0 in (70, 140):
        cv2.rectangle(img, (x0, 215), (x0 + 22, 237), (230, 220, 160), -1)
        cv2.line(img, (x0 + 11, 215), (x0 + 11, 237), (60, 60, 60), 1)
        cv2.line(img, (x0, 226), (x0 + 22, 226), (60, 60, 60), 1)
    # a fence of thin posts and a striped flag: high frequencies
    for x in range(200, 470, 9):
        cv2.line(img, (x, 262), (x, 292), (230, 235, 240), 2, cv2.LINE_AA)
    cv2.line(img, (196, 270), (470, 270), (230, 235, 240), 2, cv2.LINE_AA)
    cv2.line(img, (300, 120), (300, 200), (50, 50, 50), 2, cv2.LINE_AA)
    for i in range(6):
        cv2.rectangle(img, (302, 120 + 5 * i), (340, 124 + 5 * i),
                      (30, 30, 200) if i % 2 == 0 else (245, 245, 245), -1)
    cv2.putText(img, "srzoo", (24, 60), cv2.FONT_HERSHEY_DUPLEX, 1.6, (255, 255, 255), 3, cv2.LINE_AA)
    cv2.putText(img, "super-resolution, offline", (26, 90), cv2.FONT_HERSHEY_SIMPLEX, 0.6,
                (40, 40, 40), 1, cv2.LINE_AA)
    return imresize(img, 0.5)


if __name__ == "__main__":
    out = Path(__file__).with_name("example.png")
    cv2.imwrite(str(out), draw(), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    print(out)

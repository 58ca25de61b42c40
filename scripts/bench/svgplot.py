# SPDX-License-Identifier: GPL-2.0
"""Line plots as SVG, in plain Python: the lab has no matplotlib.

panels: a list of (title, [(name, [(x, y), ...]), ...]), drawn two per row
with log-scaled axes (x base 2, y base 10).
"""

import math
from xml.sax.saxutils import escape

COLOURS = ('#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b',
           '#e377c2', '#7f7f7f', '#bcbd22', '#17becf', '#000000', '#aec7e8',
           '#ffbb78', '#98df8a', '#ff9896', '#c5b0d5')
W, H = 700, 460
LEFT, RIGHT, TOP, BOTTOM = 70, 140, 40, 50


def _decades(lo, hi):
    ticks = []
    for e in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1):
        for m in (1, 2, 5):
            v = m * 10 ** e
            if lo <= v <= hi:
                ticks.append(v)
    return ticks


def _label(v):
    if v >= 1000 and v % 1000 == 0:
        return '%dk' % (v // 1000)
    return '%g' % v


def _panel(title, series, ox, oy, xlabel, ylabel):
    pts = [p for _, s in series for p in s if p[1] > 0]
    xs = sorted({p[0] for p in pts})
    x0, x1 = xs[0] * 0.8, xs[-1] * 1.25
    y0 = min(p[1] for p in pts) / 1.3
    y1 = max(p[1] for p in pts) * 1.3
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM

    def px(x):
        return ox + LEFT + pw * (math.log2(x) - math.log2(x0)) / \
            (math.log2(x1) - math.log2(x0))

    def py(y):
        return oy + TOP + ph * (1 - (math.log10(y) - math.log10(y0)) /
                                (math.log10(y1) - math.log10(y0)))

    out = ['<text x="%d" y="%d" text-anchor="middle" font-weight="bold">%s</text>'
           % (ox + LEFT + pw / 2, oy + TOP - 14, escape(title)),
           '<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#000"/>'
           % (ox + LEFT, oy + TOP, pw, ph)]
    for x in xs:
        out.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/>'
                   % (px(x), oy + TOP, px(x), oy + TOP + ph))
        out.append('<text x="%.1f" y="%d" text-anchor="middle">%g</text>'
                   % (px(x), oy + TOP + ph + 16, x))
    for y in _decades(y0, y1):
        out.append('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>'
                   % (ox + LEFT, py(y), ox + LEFT + pw, py(y)))
        out.append('<text x="%d" y="%.1f" text-anchor="end">%s</text>'
                   % (ox + LEFT - 5, py(y) + 4, _label(y)))
    out.append('<text x="%d" y="%d" text-anchor="middle">%s</text>'
               % (ox + LEFT + pw / 2, oy + H - 12, escape(xlabel)))
    out.append('<text transform="translate(%d,%d) rotate(-90)" '
               'text-anchor="middle">%s</text>'
               % (ox + 16, oy + TOP + ph / 2, escape(ylabel)))
    for i, (name, s) in enumerate(series):
        colour = COLOURS[i % len(COLOURS)]
        s = [p for p in s if p[1] > 0]
        path = ' '.join('%.1f,%.1f' % (px(x), py(y)) for x, y in s)
        out.append('<polyline points="%s" fill="none" stroke="%s" '
                   'stroke-width="2"/>' % (path, colour))
        out += ['<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>'
                % (px(x), py(y), colour) for x, y in s]
        ly = oy + TOP + 10 + 18 * i
        out.append('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" '
                   'stroke-width="2"/>' % (ox + W - RIGHT + 10, ly,
                                           ox + W - RIGHT + 30, ly, colour))
        out.append('<text x="%d" y="%d">%s</text>'
                   % (ox + W - RIGHT + 35, ly + 4, escape(name)))
    return out


def svg(panels, xlabel, ylabel):
    """The SVG document of the panels (at least one with points)."""
    panels = [(t, s) for t, s in panels if any(y > 0 for _, p in s for _, y in p)]
    rows = (len(panels) + 1) // 2
    width, height = W * min(len(panels), 2), H * rows
    out = ['<?xml version="1.0" encoding="UTF-8"?>',
           '<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
           'font-family="sans-serif" font-size="12">' % (width, height),
           '<rect width="100%" height="100%" fill="#fff"/>']
    for i, (title, series) in enumerate(panels):
        out += _panel(title, series, W * (i % 2), H * (i // 2), xlabel, ylabel)
    out.append('</svg>')
    return '\n'.join(out) + '\n'

"""2D tomographic operators shared by the CBCT and PET simulators.

Every operator works on a *stack* of slices at once: an image stack is a float32 array
``(n_pix, n_cols)`` whose rows are the pixels of one slice in C order (``j * nx + i``,
row ``j`` = y, column ``i`` = x) and whose columns are slices (or slices times dose
levels). One sparse matrix (rays x pixels) therefore projects all slices in one product.

Geometry (in the slice plane, millimetres): pixel ``(j, i)`` has its centre at
``x = (i - (nx - 1) / 2) * dx``, ``y = (j - (ny - 1) / 2) * dy``; the isocentre (rotation
axis) is the centre of the grid.

- Forward projection: Joseph's ray-driven method (linear interpolation along the axis
  the ray crosses most steeply, weighted by the step length), Joseph 1982, IEEE TMI 1:192.
- Fan beam: point source at distance ``sid_mm`` from the isocentre at angle ``beta``,
  flat detector described on the virtual detector plane through the isocentre
  (coordinate ``u``, mm at the isocentre), rays ordered view-major (``v * n_det + b``).
- Fan-beam FBP: cosine pre-weighting, optional Parker short-scan weights, ramp filter
  with apodisation, pixel-driven distance-weighted backprojection (Kak & Slaney 1988,
  ch. 3.4.2; Parker 1982, Med Phys 9:254).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from service.errors import OptionError

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]

#: Upper bound on (rays x samples) handled per sparse block, to bound temporary memory.
_BLOCK_ENTRIES = 1_500_000

RECON_FILTERS = ("ram-lak", "shepp-logan", "hann")


def joseph_matrix(
    start_xy: F64, dir_xy: F64, shape_yx: tuple[int, int], spacing_xy_mm: tuple[float, float]
) -> sp.csr_matrix:
    """Sparse line-integral operator (rays x pixels) for straight rays, Joseph's method.

    Parameters
    ----------
    start_xy
        ``(n_rays, 2)`` a point (x, y) on each ray, mm, outside or inside the grid.
    dir_xy
        ``(n_rays, 2)`` unit direction (x, y) of each ray.
    shape_yx
        ``(ny, nx)`` slice size in pixels.
    spacing_xy_mm
        ``(dx, dy)`` pixel size in mm.

    Returns
    -------
    scipy.sparse.csr_matrix
        float32 matrix; ``A @ image`` is the line integral (mm x pixel value) per ray.
    """
    ny, nx = shape_yx
    dx, dy = spacing_xy_mm
    n_rays = start_xy.shape[0]
    n = max(nx, ny)
    k = np.arange(n, dtype=np.float64)[None, :]
    xdrive = np.abs(dir_xy[:, 0]) / dx >= np.abs(dir_xy[:, 1]) / dy
    n_d = np.where(xdrive, nx, ny)[:, None]
    n_o = np.where(xdrive, ny, nx)[:, None]
    s_d = np.where(xdrive, dx, dy)[:, None]
    s_o = np.where(xdrive, dy, dx)[:, None]
    p_d = np.where(xdrive, start_xy[:, 0], start_xy[:, 1])[:, None]
    p_o = np.where(xdrive, start_xy[:, 1], start_xy[:, 0])[:, None]
    d_d = np.where(xdrive, dir_xy[:, 0], dir_xy[:, 1])[:, None]
    d_o = np.where(xdrive, dir_xy[:, 1], dir_xy[:, 0])[:, None]
    coord = (k - (n_d - 1) / 2.0) * s_d
    t = (coord - p_d) / d_d
    r = (p_o + t * d_o) / s_o + (n_o - 1) / 2.0
    j0f = np.floor(r)
    frac = r - j0f
    j0 = j0f.astype(np.int64)
    step = s_d / np.abs(d_d)
    in_k = k < n_d
    w0 = (1.0 - frac) * step * ((j0 >= 0) & (j0 < n_o) & in_k)
    w1 = frac * step * ((j0 + 1 >= 0) & (j0 + 1 < n_o) & in_k)
    kc = np.minimum(k, n_d - 1).astype(np.int64)
    j0c = np.clip(j0, 0, n_o - 1)
    j1c = np.clip(j0 + 1, 0, n_o - 1)
    xd = xdrive[:, None]
    idx0 = np.where(xd, j0c * nx + kc, kc * nx + j0c)
    idx1 = np.where(xd, j1c * nx + kc, kc * nx + j1c)
    data = np.stack([w0, w1], axis=2).reshape(n_rays, 2 * n).astype(np.float32)
    indices = np.stack([idx0, idx1], axis=2).reshape(n_rays, 2 * n).astype(np.int32)
    indptr = np.arange(n_rays + 1, dtype=np.int64) * (2 * n)
    mat = sp.csr_matrix((data.ravel(), indices.ravel(), indptr), shape=(n_rays, nx * ny))
    mat.eliminate_zeros()
    return mat


def _view_blocks(n_views: int, rays_per_view: int, samples_per_ray: int) -> Iterator[tuple[int, int]]:
    per_block = max(1, _BLOCK_ENTRIES // max(1, rays_per_view * samples_per_ray))
    for v0 in range(0, n_views, per_block):
        yield v0, min(n_views, v0 + per_block)


def detector_u_mm(n_det: int, du_mm: float) -> F64:
    """Centres (mm, at the isocentre) of ``n_det`` detector bins of width ``du_mm``, centred on 0."""
    return (np.arange(n_det, dtype=np.float64) - (n_det - 1) / 2.0) * du_mm


def fan_rays(beta_rad: F64, u_mm: F64, sid_mm: float) -> tuple[F64, F64]:
    """Source points and unit directions of fan-beam rays, view-major.

    The source sits at ``sid_mm * (cos b, sin b)``; bin ``u`` is the point
    ``u * (-sin b, cos b)`` on the virtual detector through the isocentre.
    """
    cb, sb = np.cos(beta_rad)[:, None], np.sin(beta_rad)[:, None]
    src = np.stack(np.broadcast_arrays(sid_mm * cb, sid_mm * sb), axis=-1)
    det = np.stack([-u_mm[None, :] * sb, u_mm[None, :] * cb], axis=-1)
    d = det - src
    d /= np.linalg.norm(d, axis=-1, keepdims=True)
    src_full = np.broadcast_to(src, d.shape)
    return src_full.reshape(-1, 2).copy(), d.reshape(-1, 2)


def fan_forward(
    stack: F32,
    shape_yx: tuple[int, int],
    spacing_xy_mm: tuple[float, float],
    beta_rad: F64,
    u_mm: F64,
    sid_mm: float,
) -> F32:
    """Fan-beam line integrals of an image stack.

    Parameters
    ----------
    stack
        ``(ny * nx, n_cols)`` float32 images (see module docstring).
    beta_rad, u_mm, sid_mm
        Source angles (rad), detector bin centres at the isocentre (mm), source-isocentre distance.

    Returns
    -------
    numpy.ndarray
        ``(n_views, n_det, n_cols)`` float32 line integrals (mm x pixel value).
    """
    n_views, n_det = beta_rad.size, u_mm.size
    out = np.empty((n_views, n_det, stack.shape[1]), dtype=np.float32)
    for v0, v1 in _view_blocks(n_views, n_det, 2 * max(shape_yx)):
        src, d = fan_rays(beta_rad[v0:v1], u_mm, sid_mm)
        mat = joseph_matrix(src, d, shape_yx, spacing_xy_mm)
        out[v0:v1] = (mat @ stack).reshape(v1 - v0, n_det, -1)
    return out


def ramp_filter(proj: F32, du_mm: float, window: str, pad_bins: int = 0, axis: int = 1) -> F32:
    """Apodised ramp filter along ``axis`` (the detector), by FFT with zero padding.

    The spatial Ram-Lak kernel of Kak & Slaney (eq. 3.61) is transformed, so the DC term
    is exact. ``window``: ``"ram-lak"`` (none), ``"shepp-logan"`` (sinc) or ``"hann"``
    (raised cosine to zero at Nyquist). If ``pad_bins`` > 0, each projection is first
    extended by that many bins on both sides with its edge value tapered to zero by a
    half cosine (the basic truncation handling of clinical reconstructors).
    """
    if window not in RECON_FILTERS:
        raise OptionError(
            f"recon filter must be one of {RECON_FILTERS}, got {window!r}: pass one of these names."
        )
    x = np.moveaxis(proj, axis, -1)
    n = x.shape[-1]
    if pad_bins > 0:
        taper = (0.5 * (1.0 + np.cos(np.pi * (np.arange(1, pad_bins + 1) / (pad_bins + 1))))).astype(
            np.float32
        )
        left = x[..., :1] * taper[::-1]
        right = x[..., -1:] * taper
        x = np.concatenate([left, x, right], axis=-1)
    m = x.shape[-1]
    n_fft = int(2 ** np.ceil(np.log2(2 * m)))
    idx = np.arange(n_fft)
    lag = np.where(idx <= n_fft // 2, idx, idx - n_fft)
    h = np.zeros(n_fft)
    h[lag == 0] = 1.0 / (4.0 * du_mm**2)
    odd = lag % 2 == 1
    h[odd] = -1.0 / (np.pi * lag[odd] * du_mm) ** 2
    resp = np.real(np.fft.rfft(h)) * du_mm
    f = np.fft.rfftfreq(n_fft)  # cycles/bin, Nyquist = 0.5
    if window == "shepp-logan":
        resp *= np.sinc(f)
    elif window == "hann":
        resp *= 0.5 * (1.0 + np.cos(2.0 * np.pi * f))
    spec = np.fft.rfft(x, n=n_fft, axis=-1)
    spec *= resp.astype(np.complex64)
    y = np.fft.irfft(spec, n=n_fft, axis=-1)[..., pad_bins : pad_bins + n].astype(np.float32)
    return np.moveaxis(y, -1, axis)


def parker_weights(beta_rad: F64, gamma_rad: F64, arc_rad: float) -> F64:
    """Generalised Parker short-scan weights ``(n_views, n_det)``.

    ``beta_rad`` is measured from the start of the arc, ``gamma_rad`` is the fan angle of
    each bin in this module's convention (conjugate ray of ``(b, g)`` is ``(b + pi - 2g, -g)``).
    Valid for ``pi + 2 max|g| <= arc <= 2 pi``; conjugate weights sum to one.
    """
    eps = (arc_rad - np.pi) / 2.0
    b = beta_rad[:, None]
    g = -gamma_rad[None, :]  # Parker's convention: conjugate is (b + pi + 2g, -g)
    w = np.ones((beta_rad.size, gamma_rad.size))
    rise = b < 2 * eps - 2 * g
    fall = b > np.pi - 2 * g
    with np.errstate(divide="ignore", invalid="ignore"):
        w_rise = np.sin(np.pi / 4 * b / (eps - g)) ** 2
        w_fall = np.sin(np.pi / 4 * (np.pi + 2 * eps - b) / (eps + g)) ** 2
    w = np.where(rise, w_rise, w)
    w = np.where(fall, w_fall, w)
    return np.clip(np.nan_to_num(w), 0.0, 1.0)


def fan_backproject(
    filtered: F32,
    pixel_xy_mm: F64,
    beta_rad: F64,
    u_mm: F64,
    sid_mm: float,
    dbeta_rad: float,
) -> F32:
    """Pixel-driven, distance-weighted fan-beam backprojection (FBP's last step).

    Parameters
    ----------
    filtered
        ``(n_views, n_det, n_cols)`` weighted and ramp-filtered projections.
    pixel_xy_mm
        ``(n_pix, 2)`` centres (x, y) in mm of the pixels to reconstruct.
    dbeta_rad
        Angular step (rad), the quadrature weight of each view.

    Returns
    -------
    numpy.ndarray
        ``(n_pix, n_cols)`` float32: ``sum_v dbeta / U^2 * q(v, u(x, y))``.
    """
    n_views, n_det, n_cols = filtered.shape
    n_pix = pixel_xy_mm.shape[0]
    du = float(u_mm[1] - u_mm[0])
    out = np.zeros((n_pix, n_cols), dtype=np.float32)
    px, py = pixel_xy_mm[:, 0:1], pixel_xy_mm[:, 1:2]
    for v0, v1 in _view_blocks(n_views, n_pix, 2):
        nv = v1 - v0
        cb, sb = np.cos(beta_rad[v0:v1])[None, :], np.sin(beta_rad[v0:v1])[None, :]
        s = px * cb + py * sb
        t = -px * sb + py * cb
        mag = (sid_mm - s) / sid_mm
        pos = (t / mag - u_mm[0]) / du
        b0f = np.floor(pos)
        frac = pos - b0f
        b0 = b0f.astype(np.int64)
        scale = dbeta_rad / mag**2
        ok0 = (b0 >= 0) & (b0 < n_det)
        ok1 = (b0 + 1 >= 0) & (b0 + 1 < n_det)
        view = np.arange(nv)[None, :] * n_det
        c0 = view + np.clip(b0, 0, n_det - 1)
        c1 = view + np.clip(b0 + 1, 0, n_det - 1)
        data = np.stack([(1 - frac) * scale * ok0, frac * scale * ok1], axis=2).astype(np.float32)
        cols = np.stack([c0, c1], axis=2).astype(np.int32)
        indptr = np.arange(n_pix + 1, dtype=np.int64) * (2 * nv)
        mat = sp.csr_matrix((data.ravel(), cols.ravel(), indptr), shape=(n_pix, nv * n_det))
        out += mat @ filtered[v0:v1].reshape(nv * n_det, n_cols)
    return out


def parallel_matrix(
    shape_yx: tuple[int, int], spacing_xy_mm: tuple[float, float], theta_rad: F64, s_mm: F64
) -> sp.csr_matrix:
    """Parallel-beam system matrix (rays x pixels), angle-major (``a * n_bins + b``).

    Ray ``(theta, s)`` is the line ``x cos(theta) + y sin(theta) = s``.
    """
    ct, st = np.cos(theta_rad)[:, None], np.sin(theta_rad)[:, None]
    start = np.stack(np.broadcast_arrays(s_mm[None, :] * ct, s_mm[None, :] * st), axis=-1).reshape(-1, 2)
    direc = np.stack(np.broadcast_arrays(-st + 0 * s_mm[None, :], ct + 0 * s_mm[None, :]), axis=-1)
    return joseph_matrix(start, direc.reshape(-1, 2).astype(np.float64), shape_yx, spacing_xy_mm)


def pixel_centres_mm(shape_yx: tuple[int, int], spacing_xy_mm: tuple[float, float]) -> F64:
    """``(ny * nx, 2)`` pixel centres (x, y) in mm, C order, isocentre at the grid centre."""
    ny, nx = shape_yx
    x = (np.arange(nx) - (nx - 1) / 2.0) * spacing_xy_mm[0]
    y = (np.arange(ny) - (ny - 1) / 2.0) * spacing_xy_mm[1]
    xx, yy = np.meshgrid(x, y)
    return np.stack([xx.ravel(), yy.ravel()], axis=1)

"""Plainly written MRMC oracles: explicit jackknife loops and the formulas of the papers.

Independent of claimladder.readers (which works from midranks and closed-form
jackknife values): every AUROC here is the mean of an explicit pairwise
comparison matrix, every jackknife value recomputes that mean without the
deleted case, and the OR/DBM statistics are written term by term with loops,
in the notation of

* Obuchowski & Rockette (1995) and Hillis (2007), Stat Med 26:596-619,
  sections 2-4 (OR model, Var/Cov1/Cov2/Cov3, ddf_H, single-test intervals);
* Hillis, Berbaum & Metz (2008), Acad Radiol 15:647-661 (DBM with Hillis's
  error term and ddf; FRRC and RRFC variants);
* the output listing of OR-DBM MRMC 2.51 for the Van Dyke data (error terms
  and standard errors of the three analyses, per-reader FRRC tests).

DeLong covariances come from ``reference.delong`` (itself an O(n^2) loop).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from reference.delong import delong_covariance


def psi_matrix(y, s):
    """``psi[a, b]`` = 1, 1/2, 0 as positive ``a`` scores above, equal to, below negative ``b``."""
    y = np.asarray(y, dtype=bool)
    s = np.asarray(s, dtype=float)
    pos, neg = s[y], s[~y]
    return (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])


def auc(y, s) -> float:
    return float(psi_matrix(y, s).mean())


def jackknife_values(y, s):
    """AUROC recomputed with each case deleted in turn (explicit deletion)."""
    y = np.asarray(y, dtype=bool)
    s = np.asarray(s, dtype=float)
    out = []
    for k in range(y.size):
        keep = np.arange(y.size) != k
        out.append(auc(y[keep], s[keep]))
    return np.array(out)


def covariance_matrix(y, rows, method):
    """Covariance of the AUROCs of ``rows`` (a list of score vectors) by loops."""
    K = len(rows)
    cov = np.zeros((K, K))
    if method == "jackknife":
        jack = [jackknife_values(y, s) for s in rows]
        c = len(y)
        for a in range(K):
            for b in range(K):
                ma, mb = jack[a].mean(), jack[b].mean()
                cov[a, b] = (c - 1) / c * sum((jack[a][k] - ma) * (jack[b][k] - mb)
                                              for k in range(c))
    else:
        for a in range(K):
            for b in range(a, K):
                cov[a, b] = cov[b, a] = delong_covariance(y, rows[a], rows[b])
    return cov


def or_analysis(y, scores, method="jackknife", level=0.95):
    """OR-Hillis analysis of ``scores[i][j]`` (modality i, reader j). Returns a dict."""
    t, r = len(scores), len(scores[0])
    theta = np.array([[auc(y, scores[i][j]) for j in range(r)] for i in range(t)])
    rows = [scores[i][j] for i in range(t) for j in range(r)]
    cov = covariance_matrix(y, rows, method)

    def c(i, j, i2, j2):
        return cov[i * r + j, i2 * r + j2]

    sums = {"var": [], "cov1": [], "cov2": [], "cov3": []}
    for i in range(t):
        for j in range(r):
            for i2 in range(t):
                for j2 in range(r):
                    if i == i2 and j == j2:
                        sums["var"].append(c(i, j, i2, j2))
                    elif i != i2 and j == j2:
                        sums["cov1"].append(c(i, j, i2, j2))
                    elif i == i2 and j != j2:
                        sums["cov2"].append(c(i, j, i2, j2))
                    else:
                        sums["cov3"].append(c(i, j, i2, j2))
    var, cov1, cov2, cov3 = (float(np.mean(sums[k])) for k in ("var", "cov1", "cov2", "cov3"))
    mean_i = [sum(theta[i]) / r for i in range(t)]
    mean_j = [sum(theta[:, j]) / t for j in range(r)]
    grand = sum(mean_i) / t
    ms_t = r * sum((mean_i[i] - grand) ** 2 for i in range(t)) / (t - 1)
    ms_r = t * sum((mean_j[j] - grand) ** 2 for j in range(r)) / (r - 1)
    ms_tr = sum((theta[i, j] - mean_i[i] - mean_j[j] + grand) ** 2
                for i in range(t) for j in range(r)) / ((t - 1) * (r - 1))
    out = {"theta": theta, "var": var, "cov1": cov1, "cov2": cov2, "cov3": cov3,
           "ms_t": ms_t, "ms_r": ms_r, "ms_tr": ms_tr,
           "var_tr": ms_tr - var + cov1 + (cov2 - cov3)}
    out["var_r"] = (ms_r - var - (t - 1) * cov1 + cov2 + (t - 1) * cov3 - out["var_tr"]) / t
    diff = mean_i[1] - mean_i[0]
    z = stats.norm.ppf(0.5 + level / 2)
    # RRRC (Hillis 2007, eqs. for F_OR-H and ddf_H)
    den = ms_tr + r * max(cov2 - cov3, 0.0)
    ddf = den ** 2 / (ms_tr ** 2 / ((t - 1) * (r - 1)))
    f = ms_t / den
    se = math.sqrt(2 / r * den)
    q = stats.t.ppf(0.5 + level / 2, ddf)
    out["RRRC"] = {"f": f, "ddf": ddf, "p": stats.f.sf(f, t - 1, ddf), "se": se,
                   "ci": (diff - q * se, diff + q * se)}
    # FRRC: chi-square on t - 1 df
    den = var - cov1 + (r - 1) * max(cov2 - cov3, 0.0)
    chi2 = (t - 1) * ms_t / den
    se = math.sqrt(2 / r * den)
    out["FRRC"] = {"f": chi2 / (t - 1), "p": stats.chi2.sf(chi2, t - 1), "se": se,
                   "ci": (diff - z * se, diff + z * se)}
    # RRFC: conventional treatment x reader ANOVA
    f = ms_t / ms_tr
    df = (t - 1) * (r - 1)
    se = math.sqrt(2 / r * ms_tr)
    q = stats.t.ppf(0.5 + level / 2, df)
    out["RRFC"] = {"f": f, "ddf": df, "p": stats.f.sf(f, t - 1, df), "se": se,
                   "ci": (diff - q * se, diff + q * se)}
    # Single-modality RRRC intervals
    single = []
    for i in range(t):
        ms_r_i = sum((theta[i, j] - mean_i[i]) ** 2 for j in range(r)) / (r - 1)
        cov2_i = np.mean([c(i, j, i, j2) for j in range(r) for j2 in range(r) if j != j2])
        den_i = ms_r_i + r * max(cov2_i, 0.0)
        df_i = den_i ** 2 / (ms_r_i ** 2 / (r - 1))
        single.append({"se": math.sqrt(den_i / r), "df": df_i})
    out["single_rrrc"] = single
    # Per-reader FRRC z tests: SE = sqrt(2 (Var_j - Cov1_j)) (t = 2)
    per_reader = []
    for j in range(r):
        var_j = np.mean([c(i, j, i, j) for i in range(t)])
        cov1_j = np.mean([c(i, j, i2, j) for i in range(t) for i2 in range(t) if i != i2])
        per_reader.append({"estimate": theta[1, j] - theta[0, j],
                           "se": math.sqrt(2 * (var_j - cov1_j))})
    out["per_reader"] = per_reader
    out["difference"] = diff
    return out


def dbm_analysis(y, scores, level=0.95):
    """DBM pseudovalue ANOVA written with loops (Dorfman et al. 1992; Hillis et al. 2008)."""
    t, r = len(scores), len(scores[0])
    c = len(y)
    Y = np.zeros((t, r, c))
    for i in range(t):
        for j in range(r):
            full = auc(y, scores[i][j])
            jack = jackknife_values(y, scores[i][j])
            for k in range(c):
                Y[i, j, k] = c * full - (c - 1) * jack[k]
    g = Y.mean()
    mi = [Y[i].mean() for i in range(t)]
    mj = [Y[:, j].mean() for j in range(r)]
    mk = [Y[:, :, k].mean() for k in range(c)]
    mij = [[Y[i, j].mean() for j in range(r)] for i in range(t)]
    mik = [[Y[i, :, k].mean() for k in range(c)] for i in range(t)]
    mjk = [[Y[:, j, k].mean() for k in range(c)] for j in range(r)]
    ms = {}
    ms["T"] = r * c * sum((mi[i] - g) ** 2 for i in range(t)) / (t - 1)
    ms["R"] = t * c * sum((mj[j] - g) ** 2 for j in range(r)) / (r - 1)
    ms["C"] = t * r * sum((mk[k] - g) ** 2 for k in range(c)) / (c - 1)
    ms["TR"] = c * sum((mij[i][j] - mi[i] - mj[j] + g) ** 2
                       for i in range(t) for j in range(r)) / ((t - 1) * (r - 1))
    ms["TC"] = r * sum((mik[i][k] - mi[i] - mk[k] + g) ** 2
                       for i in range(t) for k in range(c)) / ((t - 1) * (c - 1))
    ms["RC"] = t * sum((mjk[j][k] - mj[j] - mk[k] + g) ** 2
                       for j in range(r) for k in range(c)) / ((r - 1) * (c - 1))
    ms["TRC"] = sum((Y[i, j, k] - mij[i][j] - mik[i][k] - mjk[j][k] + mi[i] + mj[j] + mk[k]
                     - g) ** 2 for i in range(t) for j in range(r) for k in range(c)) / (
        (t - 1) * (r - 1) * (c - 1))
    den = ms["TR"] + max(ms["TC"] - ms["TRC"], 0.0)
    ddf = den ** 2 / (ms["TR"] ** 2 / ((t - 1) * (r - 1)))
    f = ms["T"] / den
    return {"Y": Y, "ms": ms, "RRRC": {"f": f, "ddf": ddf, "p": stats.f.sf(f, t - 1, ddf)},
            "FRRC": {"f": ms["T"] / ms["TC"], "ddf": (t - 1) * (c - 1)},
            "RRFC": {"f": ms["T"] / ms["TR"], "ddf": (t - 1) * (r - 1)}}


def model_vs_readers(y, reader_scores, model_scores, method="jackknife", level=0.95):
    """Single-modality OR analysis of D_j = AUC(model) - AUC(reader j), with loops."""
    r = len(reader_scores)
    rows = list(reader_scores) + [model_scores]
    cov = covariance_matrix(y, rows, method)
    theta = [auc(y, s) for s in rows]
    d = [theta[r] - theta[j] for j in range(r)]

    def cov_d(a, b):  # Cov(A0 - Aa, A0 - Ab)
        return cov[r, r] - cov[r, b] - cov[a, r] + cov[a, b]

    var_d = np.mean([cov_d(j, j) for j in range(r)])
    cov2_d = np.mean([cov_d(a, b) for a in range(r) for b in range(r) if a != b])
    mean_d = sum(d) / r
    ms_r = sum((dj - mean_d) ** 2 for dj in d) / (r - 1)
    den = ms_r + r * max(cov2_d, 0.0)
    ddf = den ** 2 / (ms_r ** 2 / (r - 1))
    se = math.sqrt(den / r)
    tstat = mean_d / se
    return {"difference": mean_d, "se": se, "ddf": ddf,
            "p": 2 * stats.t.sf(abs(tstat), ddf),
            "frrc_se": math.sqrt((var_d + (r - 1) * max(cov2_d, 0.0)) / r),
            "rrfc_se": math.sqrt(ms_r / r), "model_auc": theta[r],
            "per_reader_se": [math.sqrt(cov_d(j, j)) for j in range(r)]}

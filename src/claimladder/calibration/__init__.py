from ._binned import *  # noqa
from ._smooth import *  # noqa
from ._logistic import *  # noqa
from ._curves import *  # noqa
from ._multiclass import *  # noqa
from ._table import *  # noqa
from ._recalibration import *  # noqa
from ._conformal import *  # noqa

build-post/obj/src/server/sandbox.o: src/server/sandbox.c \
 src/server/../util/util.h src/server/sandbox.h src/server/../conf/conf.h
src/server/../util/util.h:
src/server/sandbox.h:
src/server/../conf/conf.h:
